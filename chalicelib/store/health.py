"""The stage's resources as operators see them: reachability for /health, queue depths.

Health names resources by kind ("jobs", "encode"), never by their full names or
any setting, because the route is public.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from chalicelib.config import settings

log = logging.getLogger("openencoder.health")
CACHE_SECONDS = 5.0  # a public route: at most one round of checks per container per 5 s
_cache: dict[str, Any] = {}
_lock = threading.Lock()


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    if code:
        return str(code)
    cause = getattr(exc, "cause", None)
    return _error_code(cause) if isinstance(cause, Exception) else type(exc).__name__


def _table(model: Any) -> str:
    """GetItem of a key no item has: answers from any table that exists, whatever its keys."""
    keys = {}
    for attribute in model.get_attributes().values():
        if attribute.is_hash_key or attribute.is_range_key:
            role = "range_key" if attribute.is_range_key else "hash_key"
            keys[role] = 0 if attribute.attr_type == "N" else "openencoder:health"
    try:
        model.get(keys["hash_key"], keys.get("range_key"))
    except model.DoesNotExist:
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is a finding, not a crash
        return "missing" if _error_code(exc) == "ResourceNotFoundException" else "unreachable"
    return "ok"


def _queue(name: str) -> str:
    from chalicelib.store.queues import sqs

    try:
        sqs().get_queue_url(QueueName=name)
    except Exception as exc:  # noqa: BLE001
        code = _error_code(exc)
        return (
            "missing"
            if "NonExistentQueue" in code or "QueueDoesNotExist" in code
            else "unreachable"
        )
    return "ok"


def _bucket(name: str) -> str:
    from chalicelib.store.storage import s3

    try:
        s3().head_bucket(Bucket=name)
    except Exception as exc:  # noqa: BLE001
        return "missing" if _error_code(exc) in ("404", "NoSuchBucket") else "unreachable"
    return "ok"


def check() -> dict[str, dict[str, str]]:
    from chalicelib.store.models import ALL_MODELS

    s = settings()
    return {
        "tables": {
            m.Meta.table_name.removeprefix(s.table_prefix + "-"): _table(m) for m in ALL_MODELS
        },
        "queues": {
            "encode": _queue(s.encode_queue),
            "long": _queue(s.long_queue),
            "webhooks": _queue(s.webhook_queue),
        },
        "buckets": {"input": _bucket(s.input_bucket), "output": _bucket(s.output_bucket)},
    }


def report() -> tuple[int, dict[str, Any]]:
    """(status, body): 200 when every resource answers, else 503 naming what does not."""
    with _lock:
        cached = _cache.get("report")
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
    checks = check()
    bad = [f"{kind} {name} {state}" for kind, group in checks.items()
           for name, state in group.items() if state != "ok"]  # fmt: skip
    if bad:
        log.warning("degraded: %s", ", ".join(bad))
        result = (503, {"status": 503, "message": "degraded: " + ", ".join(bad), "checks": checks})
    else:
        result = (200, {"status": 200, "message": "ok", "checks": checks})
    with _lock:
        _cache["report"] = (time.monotonic(), result)
    return result


def _oldest_waiting() -> dict[str, float]:
    """Seconds since the message of the longest-waiting job of each job queue was due.

    SQS tells the age of a queue's oldest message only through CloudWatch (which IAM
    cannot scope to a resource); the jobs table knows it: waiting jobs are in a sparse
    index ordered by when their message was due. One Query, oldest first.
    """
    from chalicelib.store.models import Job

    now, oldest = time.time(), {}
    for job in Job.by_queued.query("job", scan_index_forward=True, limit=100):
        kind = job.queue or "encode"
        if kind not in oldest and job.queued_due is not None:
            oldest[kind] = max(0.0, round(now - float(job.queued_due), 1))
        if len(oldest) == 2:
            break
    return oldest


def queue_depths() -> list[dict[str, Any]]:
    """Depth, in-flight and delayed counts of each queue and its dead-letter queue."""
    from chalicelib.store.queues import sqs

    s = settings()
    ages = _oldest_waiting()
    age_of = {s.encode_queue: ages.get("encode"), s.long_queue: ages.get("long")}
    names = [s.encode_queue, s.long_queue, s.webhook_queue]
    wanted = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    rows = []
    for name in [n for base in names for n in (base, f"{base}-dlq")]:
        url = sqs().get_queue_url(QueueName=name)["QueueUrl"]
        got = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=wanted)["Attributes"]
        rows.append(
            {
                "name": name,
                "depth": int(got.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(got.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(got.get("ApproximateNumberOfMessagesDelayed", 0)),
                # Job queues: from the jobs waiting (0 when none); others: not known.
                "oldest_age_seconds": (age_of[name] or 0.0) if name in age_of else None,
            }
        )
    return rows
