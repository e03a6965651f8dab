"""A cold container makes its AWS clients once: one DynamoDB client serves every model, and
the first secret read does not load botocore's models again in a session of its own
(each new botocore session and client costs about 0.1 s of CPU)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import botocore.session
import pytest

from chalicelib.store import models, secret_params


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Counts the botocore sessions and clients made while a test runs."""
    counts: dict[str, Any] = {"sessions": 0, "clients": Counter()}
    session_init = botocore.session.Session.__init__
    create_client = botocore.session.Session.create_client

    def counting_init(self, *args, **kwargs):
        counts["sessions"] += 1
        session_init(self, *args, **kwargs)

    def counting_create(self, service_name, *args, **kwargs):
        counts["clients"][service_name] += 1
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counting_init)
    monkeypatch.setattr(botocore.session.Session, "create_client", counting_create)
    return counts


def test_every_model_of_a_cold_container_shares_one_dynamodb_client(aws, monkeypatch, made):
    # As a new container finds them: no model has a connection yet.
    for model in models.ALL_MODELS:
        monkeypatch.setattr(model, "_connection", None)
    models.connection.cache_clear()
    for model in models.ALL_MODELS:
        assert list(model.scan(limit=1)) is not None
    # One botocore session and client (PynamoDB makes its own), not one of each per model.
    assert made["clients"]["dynamodb"] == 1 and made["sessions"] == 1
    connections = {id(model._get_connection().connection) for model in models.ALL_MODELS}
    assert connections == {id(models.connection())}


def test_the_first_secret_read_uses_boto3s_default_session(aws, made):
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # as a cold container: no provider yet
    assert secret_params.jwt_signing_key()
    assert made["sessions"] == 0 and made["clients"]["ssm"] == 1
    assert secret_params.jwt_signing_key()  # the provider, and its cache, are kept
    assert made["clients"]["ssm"] == 1
