"""Least privilege: every AWS action the code performed in this suite is in a function
policy, and no policy grants a wildcard resource."""

from __future__ import annotations

import pytest

from chalicelib.config import settings
from ops import policies
from tests.conftest import AWS_CALLS

# Operations whose IAM action has another name, or that need several.
IAM_ACTIONS = {
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "CreateMultipartUpload"): ["s3:PutObject"],
    ("s3", "UploadPart"): ["s3:PutObject"],
    ("s3", "CompleteMultipartUpload"): ["s3:PutObject"],
    ("dynamodb", "TransactWriteItems"): [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    ],
}


def documents() -> dict[str, dict]:
    return policies.documents(settings(), "us-east-1", "123456789012")


@pytest.mark.after_all
def test_every_recorded_aws_action_is_allowed():
    if not AWS_CALLS:
        pytest.skip("records the calls of the rest of the suite: run it with `make test`")
    assert len(AWS_CALLS) > 5
    allowed = {
        action for doc in documents().values() for st in doc["Statement"] for action in st["Action"]
    }
    needed = set()
    for service, operation in AWS_CALLS:
        needed.update(IAM_ACTIONS.get((service, operation), [f"{service}:{operation}"]))
    assert needed - allowed == set(), f"recorded calls: {sorted(AWS_CALLS)}"


def test_no_policy_grants_a_wildcard_resource():
    for name, doc in documents().items():
        for statement in doc["Statement"]:
            assert statement["Resource"] and all(
                r != "*" and not r.endswith(":*") for r in statement["Resource"]
            ), name
            assert not any(a.endswith(":*") or a == "*" for a in statement["Action"]), name
