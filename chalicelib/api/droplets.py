"""What droplets ask of the API: short-lived credentials, authenticated by the droplet's secret."""

from __future__ import annotations

from typing import Any

from chalicelib.api.http import endpoint, parse_body
from chalicelib.api.schemas import WorkerCredentialsRequest
from chalicelib.fleet import droplet_credentials


@endpoint()
def credentials(request: Any) -> Any:
    # The droplet's secret, not a user's JWT: this route has no authorizer.
    secret = droplet_credentials.secret_from_header((request.headers or {}).get("authorization"))
    body = parse_body(request, WorkerCredentialsRequest)
    issued = droplet_credentials.exchange(body.droplet_id, secret)
    return {"credentials": issued, "status": 200}
