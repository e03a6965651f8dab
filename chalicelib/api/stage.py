"""The stage as operators see it: health, queues, worker pools, and the admin's settings."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts.auth import Principal
from chalicelib.api.http import endpoint, ok, parse_body
from chalicelib.api.schemas import SettingsUpdate
from chalicelib.fleet import heartbeats
from chalicelib.jobs import runtime_settings
from chalicelib.store import health
from chalicelib.store.models import rfc3339


@endpoint()
def health_report(request: Any) -> Any:
    status, body = health.report()
    return ok(body, status)


@endpoint(role="operator")
def queue(request: Any, principal: Principal) -> Any:
    return {"queues": health.queue_depths(), "status": 200}


def _epoch(value: Any) -> str | None:
    from datetime import UTC, datetime

    return (
        rfc3339(datetime.fromtimestamp(float(value), UTC).replace(microsecond=0)) if value else None
    )


@endpoint(role="operator")
def pools(request: Any, principal: Principal) -> Any:
    items = [
        {
            "worker_id": w.worker_id,
            "droplet_id": int(w.droplet_id) if w.droplet_id is not None else None,
            "state": w.state,
            "job_id": int(w.job_id) if w.job_id is not None else None,
            "last_seen": _epoch(w.last_seen),
            "idle_since": _epoch(w.idle_since),
        }
        for w in heartbeats.all_workers()
    ]
    return {"count": len(items), "items": items}


@endpoint(role="admin")
def get_settings(request: Any, principal: Principal) -> Any:
    return {"settings": runtime_settings.view(), "status": 200}


@endpoint(role="admin")
def put_settings(request: Any, principal: Principal) -> Any:
    body = parse_body(request, SettingsUpdate)
    given = body.model_dump(include=body.model_fields_set)
    secrets = {k: given.pop(k) for k in list(given) if k in runtime_settings.SECRETS}
    return {"settings": runtime_settings.update(given, secrets), "status": 200}
