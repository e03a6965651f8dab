"""Secrets (and the API URL) of a stage, read from SSM parameters and cached per container."""

from __future__ import annotations

from chalicelib.config import settings
from chalicelib.errors import Unavailable

_MAX_AGE_SECONDS = 300


def _get(name: str, max_age: int = _MAX_AGE_SECONDS) -> str | None:
    # Imported here: Powertools' parameters module pulls in boto3 clients and
    # would add ~100 ms to every cold start that never needs a secret.
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    if "ssm" not in DEFAULT_PROVIDERS:
        # Left to itself, Powertools makes its provider on a boto3 session of its own, which
        # loads botocore's models and endpoints again (0.1-0.2 s of CPU on a cold start).
        # boto3's default session, which every other client here uses, has them loaded.
        client = boto3.client("ssm", region_name=settings().region)
        DEFAULT_PROVIDERS["ssm"] = parameters.SSMProvider(boto3_client=client)
    try:
        return parameters.get_parameter(name, decrypt=True, max_age=max_age)
    except parameters.exceptions.GetParameterError:
        return None


def jwt_signing_key() -> str:
    key = _get(settings().jwt_key_parameter)
    if not key:
        raise Unavailable("the token signing key is not provisioned for this stage")
    return key


def digitalocean_token() -> str | None:
    return _get(settings().do_token_parameter) or None


def slack_webhook_url() -> str | None:
    """Set through PUT /api/settings; read at most a minute old so a change applies quickly."""
    return _get(settings().slack_url_parameter, max_age=60) or None


def api_url() -> str | None:
    """The API's base URL (ending in /api) as deploy stored it; OE_API_URL wins."""
    return settings().api_url or _get(settings().api_url_parameter) or None
