"""Short-lived AWS credentials for worker droplets, in exchange for a per-droplet secret.

No cloud key is ever written into a droplet's user data. Instead:
- at creation each droplet gets a random secret; only its SHA-256 is stored, keyed by the
  droplet id (`register`), and deleting the droplet deletes it (`revoke`);
- the droplet trades (its id, its secret) at `POST /api/worker/credentials` for STS
  credentials of the stage's worker role (`exchange`), valid `OE_WORKER_CREDENTIALS_SECONDS`;
- on the droplet, botocore runs `python -m chalicelib.fleet.droplet_credentials` as its
  `credential_process` (see cloudinit): botocore wraps the answer in RefreshableCredentials
  and asks again 15 minutes before expiry, in the worker and in every client it makes
  (boto3 and PynamoDB alike). ffmpeg never sees any of it: there are no key variables.

Revoking stops renewals at once; credentials already handed out end at their expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import OpenEncoderError, Unauthorized, Unavailable
from chalicelib.store.models import SystemItem

log = logging.getLogger("openencoder.droplet_credentials")
SCHEME = "Droplet"
# botocore refreshes 15 min before expiry; a cached answer closer to expiry than this
# would be handed back again and again, so the process fetches fresh ones instead.
CACHE_MARGIN_SECONDS = 20 * 60
TIMEOUT_SECONDS = 15


# --- the API side ------------------------------------------------------------------


def _key(droplet_id: int) -> str:
    return f"droplet#{droplet_id}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def register(droplet_id: int, secret: str) -> None:
    """Remember the droplet's secret (as a hash) so it can fetch credentials."""
    SystemItem(_key(droplet_id), ref=droplet_id, digest=_digest(secret)).save()


def revoke(droplet_id: int) -> None:
    """The droplet can fetch no more credentials."""
    SystemItem(_key(droplet_id)).delete()


def secret_from_header(header: str | None) -> str:
    scheme, _, secret = (header or "").strip().partition(" ")
    if scheme != SCHEME or not secret.strip():
        raise Unauthorized(f"send 'Authorization: {SCHEME} <the droplet's secret>'")
    return secret.strip()


@cache
def worker_role_arn() -> str:
    import boto3

    s = settings()
    account = boto3.client("sts", region_name=s.region).get_caller_identity()["Account"]
    return f"arn:aws:iam::{account}:role/{s.worker_role_name}"


def exchange(droplet_id: int, secret: str) -> dict[str, Any]:
    """STS credentials of the worker role for a droplet that proves its secret."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        item = SystemItem.get(_key(droplet_id), consistent_read=True)
    except SystemItem.DoesNotExist:
        item = None
    # Compared in constant time; an unknown droplet costs the same as a wrong secret.
    expected = item.digest if item is not None and item.digest else _digest(new_secret())
    if not hmac.compare_digest(expected, _digest(secret)) or item is None:
        raise Unauthorized("unknown droplet or wrong secret (a deleted droplet's is revoked)")
    s = settings()
    try:
        answer = boto3.client("sts", region_name=s.region).assume_role(
            RoleArn=worker_role_arn(),
            RoleSessionName=f"droplet-{droplet_id}",
            DurationSeconds=s.worker_credentials_seconds,
        )
    except (BotoCoreError, ClientError) as exc:
        log.error("assuming the worker role failed for droplet %s: %s", droplet_id, exc)
        raise Unavailable("the worker role could not be assumed: see the API's log") from None
    credentials = answer["Credentials"]
    expiration = credentials["Expiration"]
    if isinstance(expiration, datetime):
        expiration = expiration.astimezone(UTC).isoformat().replace("+00:00", "Z")
    log.info("issued worker credentials to droplet %s until %s", droplet_id, expiration)
    return {
        "access_key_id": credentials["AccessKeyId"],
        "secret_access_key": credentials["SecretAccessKey"],
        "session_token": credentials["SessionToken"],
        "expiration": expiration,
    }


# --- the droplet side: botocore's credential_process ---------------------------------


def _expires_at(expiration: str) -> float:
    return datetime.fromisoformat(expiration.replace("Z", "+00:00")).timestamp()


def _cached(path: Path, now: float) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
        if _expires_at(document["Expiration"]) - now > CACHE_MARGIN_SECONDS:
            return document
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _store(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
    os.replace(partial, path)  # another process never reads half a file


def fetch(api_url: str, droplet_id: int, secret: str) -> dict[str, Any]:
    """Ask the API for credentials; the answer in botocore's credential_process format."""
    request = urllib.request.Request(  # noqa: S310 (the stage's own https URL)
        f"{api_url}/worker/credentials",
        data=json.dumps({"droplet_id": droplet_id}).encode(),
        headers={"Authorization": f"{SCHEME} {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
        credentials = json.loads(answer.read())["credentials"]
    return {
        "Version": 1,
        "AccessKeyId": credentials["access_key_id"],
        "SecretAccessKey": credentials["secret_access_key"],
        "SessionToken": credentials["session_token"],
        "Expiration": credentials["expiration"],
    }


def credential_process(now: float | None = None) -> dict[str, Any]:
    """What `python -m chalicelib.fleet.droplet_credentials` prints: cached, or fetched anew."""
    from chalicelib.fleet import droplet_metadata

    s = settings()
    now = time.time() if now is None else now
    cache_path = Path(s.droplet_credentials_cache)
    document = _cached(cache_path, now)
    if document is not None:
        return document
    droplet_id = droplet_metadata.droplet_id()
    if droplet_id is None:
        raise Unavailable("no droplet id from the metadata service (OE_DROPLET_METADATA_URL)")
    if not s.api_url:
        raise Unavailable("OE_API_URL is not set: the droplet cannot reach the API")
    try:
        secret = Path(s.droplet_secret_file).read_text().strip()
    except OSError as exc:
        raise Unavailable(f"cannot read the droplet secret ({exc.strerror})") from None
    try:
        document = fetch(s.api_url, droplet_id, secret)
    except urllib.error.HTTPError as exc:
        raise Unavailable(f"the API refused credentials: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise Unavailable(f"the API did not answer with credentials: {exc}") from None
    _store(cache_path, document)
    return document


def main() -> int:
    try:
        document = credential_process()
    except OpenEncoderError as exc:
        # botocore shows this text in its CredentialRetrievalError; no secret is in it.
        print(f"openencoder: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
