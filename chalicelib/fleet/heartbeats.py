"""Worker heartbeats: each long-queue worker records its droplet, state, job and last-seen time."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta

from chalicelib.fleet import droplet_metadata
from chalicelib.store.models import WorkerState

_KEEP = timedelta(days=1)  # DynamoDB's TTL removes workers gone for a day


def beat(worker_id: str, state: str, job_id: int | None = None) -> None:
    now = time.time()
    current = None
    with contextlib.suppress(WorkerState.DoesNotExist):
        current = WorkerState.get(worker_id)
    idle_since = None
    if state == "idle":
        was_idle = current is not None and current.state == "idle" and current.idle_since
        idle_since = current.idle_since if was_idle else now
    WorkerState(
        worker_id,
        droplet_id=droplet_metadata.droplet_id(),
        state=state,
        job_id=job_id,
        last_seen=now,
        idle_since=idle_since,
        expires=datetime.now(UTC) + _KEEP,
    ).save()


def all_workers() -> list[WorkerState]:
    return list(WorkerState.by_kind.query("worker"))
