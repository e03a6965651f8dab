"""Job events for webhooks: one small SQS message per event, sent where a job's status changes.

This is the only part of webhooks the encode path runs: it never calls an
endpoint, never reads webhooks, and never raises (an event that cannot be queued
is logged; the job's own status write has already succeeded). The webhooks
function (`chalicelib.delivery.webhooks.handle_batch`) fans each event out to the
endpoints that want it and delivers them with retries.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import cache

from chalicelib.config import settings

log = logging.getLogger("openencoder.events")

TERMINAL_EVENTS = {
    "completed": "job.completed",
    "error": "job.failed",
    "cancelled": "job.cancelled",
}
PROGRESS_EVENT = "job.progress"
# What a webhook may subscribe to, and what it gets when it names nothing.
EVENTS = (*TERMINAL_EVENTS.values(), PROGRESS_EVENT)
DEFAULT_EVENTS = tuple(TERMINAL_EVENTS.values())
PROGRESS_EVERY_SECONDS = 10.0
_last_progress: dict[int, float] = {}
_progress_lock = threading.Lock()


@cache
def _queue_url() -> str:
    from chalicelib.store.queues import sqs

    return sqs().get_queue_url(QueueName=settings().webhook_queue)["QueueUrl"]


def _send(body: dict) -> None:
    from chalicelib.store.queues import sqs

    try:
        sqs().send_message(QueueUrl=_queue_url(), MessageBody=json.dumps(body))
    except Exception:  # an event must never fail the job that caused it
        log.warning("could not queue %s for job %s", body.get("event"), body.get("job_id"),
                    exc_info=True)  # fmt: skip


def job_finished(job_id: int, status: str) -> None:
    """Call after a job's terminal status is written: queues job.completed/failed/cancelled."""
    event = TERMINAL_EVENTS.get(str(status))
    if event is None:
        return
    with _progress_lock:
        _last_progress.pop(int(job_id), None)
    _send({"kind": "event", "event": event, "job_id": int(job_id), "at": time.time()})


def job_progress(job_id: int, percent: float) -> None:
    """Call as progress is written; queues at most one job.progress per 10 s per job."""
    now = time.monotonic()
    with _progress_lock:
        last = _last_progress.get(int(job_id))
        if last is not None and now - last < PROGRESS_EVERY_SECONDS:
            return
        _last_progress[int(job_id)] = now
    _send({"kind": "event", "event": PROGRESS_EVENT, "job_id": int(job_id),
           "progress": round(float(percent), 2), "at": time.time()})  # fmt: skip
