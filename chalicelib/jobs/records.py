"""Jobs: creation, lookup, listing and the cancel/restart transitions of the lifecycle.

Every status change is a conditional write on the current status, never a
read-modify-write, so racing workers and clients cannot overwrite each other.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.config import settings
from chalicelib.errors import Gone, InvalidInput, NotFound, Unavailable
from chalicelib.jobs import cost, lifecycle, task_lifecycle, tries
from chalicelib.jobs.lifecycle import Status
from chalicelib.jobs.output_files import kind_of, name_of
from chalicelib.jobs.task_lifecycle import TaskStatus
from chalicelib.presets import quality
from chalicelib.presets.catalog import get_preset_by_name
from chalicelib.presets.spec import parse_preset_data
from chalicelib.store import counters, faults, queues, stats
from chalicelib.store.ids import is_guid, new_guid
from chalicelib.store.models import Job, rfc3339
from chalicelib.store.storage import (
    INTERNAL_PREFIX,
    download_link,
    from_uri,
    parse_location,
    version_exists,
)

log = logging.getLogger("openencoder.jobs")
MAX_PAGE_SIZE = 100
# A ladder records a thumbnail every few seconds: check their versions a few at a time.
_VERSION_CHECKS = 8


def resolve_locations(source: str, dest: str) -> tuple[str, str]:
    s = settings()
    src = parse_location(
        source, default_bucket=s.input_bucket, allowed_buckets=s.buckets, what="source"
    )
    dst = parse_location(
        dest,
        default_bucket=s.output_bucket,
        allowed_buckets=s.buckets,
        what="dest",
        is_prefix=True,
    )
    if dst.bucket == s.input_bucket and s.watch_prefix and dst.key.startswith(s.watch_prefix):
        raise InvalidInput(
            f"dest must not be under the watch prefix {s.watch_prefix!r}: "
            "outputs there would start new jobs"
        )
    if dst.key.startswith(INTERNAL_PREFIX):
        raise InvalidInput(f"dest must not be under {INTERNAL_PREFIX!r}: that prefix is internal")
    return src.uri, dst.uri


PARALLEL = ("auto", "off")
PRIORITY = ("speed", "cost")


def _options(options: dict[str, Any] | None) -> dict[str, Any] | None:
    """How the job asks to run (chalicelib/graph): `parallel` auto|off, `priority` speed|cost,
    and `quality` (the metrics to measure) if the job names it."""
    if not options:
        return None
    parallel, priority = options.get("parallel") or "auto", options.get("priority") or "speed"
    if parallel not in PARALLEL:
        raise InvalidInput(f"parallel must be one of {', '.join(PARALLEL)}")
    if priority not in PRIORITY:
        raise InvalidInput(f"priority must be one of {', '.join(PRIORITY)}")
    chosen: dict[str, Any] = {"parallel": parallel, "priority": priority}
    if options.get("quality") is not None:
        chosen["quality"] = {"metrics": list(quality.check(options["quality"]))}
    return chosen


def create_job(
    *,
    owner: str,
    preset: str,
    source: str,
    dest: str,
    origin: dict[str, Any] | None = None,
    notify_webhook: str | None = None,
    options: dict[str, Any] | None = None,
) -> Job:
    """Write the job, then queue it; if queueing fails the job ends in error, never stuck."""
    if not isinstance(preset, str) or not preset:
        raise InvalidInput("preset is required")
    src, dst = resolve_locations(source, dest)
    try:
        chosen = get_preset_by_name(preset)
    except NotFound:
        raise InvalidInput(f"no preset named {preset!r}") from None
    if not chosen.active:
        raise InvalidInput(f"preset {preset!r} is not active")
    try:
        spec = parse_preset_data(chosen.data)  # stored before today's allow-list? judge it again
    except InvalidInput as exc:
        raise InvalidInput(
            f"preset {preset!r} no longer passes validation: {exc.message}; update the preset"
        ) from None
    job_options = _options(options)
    metrics = quality.wanted(job_options, chosen.data)
    quality.check_video(metrics, spec.args, chosen.output, spec.ladder)
    job = Job(
        counters.next_value("job-id"),
        guid=new_guid(),
        owner=owner,
        preset=chosen.name,
        preset_snapshot={"id": int(chosen.id), "data": chosen.data, "output": chosen.output},
        source=src,
        dest=dst,
        attempt=1,
        origin=origin,
        notify_webhook=notify_webhook,
        options=job_options,
    )
    lifecycle.create(job)
    _enqueue(job)
    return job


def _enqueue(job: Job) -> None:
    try:
        queues.send_job(job.queue, int(job.id), int(job.attempt))
    except Exception as exc:  # noqa: BLE001 - any SQS failure must not leave the job queued
        reason = f"could not be queued ({faults.describe(exc)}); restart it"
        try:
            lifecycle.fail(int(job.id), int(job.attempt), reason, expect=lifecycle.WAITING)
        except Exception:
            log.warning("job %s: could not record the failed send", job.id, exc_info=True)
        raise Unavailable(f"job {job.id} {reason}", headers={"Retry-After": "5"}) from None


def get_job(ref: str | int) -> Job:
    """A job by numeric id or by guid."""
    ref = str(ref)
    if ref.isascii() and ref.isdigit() and len(ref) < 19:  # "²".isdigit() is True too
        try:
            return Job.get(int(ref))
        except Job.DoesNotExist:
            pass
    elif is_guid(ref):
        for job in Job.by_guid.query(ref, limit=1):
            return job
    raise NotFound(f"no job {ref!r}")


def _decode_cursor(cursor: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=="))["before"]
        if not isinstance(value, int):
            raise TypeError
        return value
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise InvalidInput("cursor is not one this API returned") from None


def _encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode().rstrip("=")


def list_jobs(
    *, page: int = 1, count: int = 20, cursor: str | None = None
) -> tuple[list[Job], int, str | None]:
    """Newest first, `count` at a time.

    Ids come from one counter and jobs are never deleted, so page N is the id
    window (top - N*count, top - (N-1)*count]: one bounded Query at any depth,
    and pages never overlap. `cursor` walks on from the last id a page showed.
    """
    if not 1 <= count <= MAX_PAGE_SIZE:
        raise InvalidInput(f"count must be 1 to {MAX_PAGE_SIZE}")
    if page < 1:
        raise InvalidInput("page must be 1 or more")
    if cursor:
        condition = Job.id < _decode_cursor(cursor)
        limit = count + 1
    else:
        top = counters.current_value("job-id") - (page - 1) * count
        condition = Job.id.between(top - count + 1, top)
        limit = count
    rows = list(
        Job.by_id.query("job", range_key_condition=condition, scan_index_forward=False, limit=limit)
    )
    items = rows[:count]
    more = len(rows) > count if cursor else bool(items) and int(items[-1].id) > 1
    next_cursor = _encode_cursor(int(items[-1].id)) if items and more else None
    return items, counters.current_value("jobs-total"), next_cursor


def cancel_job(ref: str | int) -> Job:
    return lifecycle.cancel(int(get_job(ref).id))


def restart_job(ref: str | int) -> Job:
    """Run a finished job again from scratch as the next attempt."""
    job = lifecycle.restart(int(get_job(ref).id))
    _enqueue(job)
    return job


def counts() -> dict[str, int]:
    """Jobs by status, from the counters each status change keeps."""
    return stats.counts(tuple(s.value for s in Status))


def _date(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


def summary_view(job: Job) -> dict[str, Any]:
    return {
        "id": int(job.id),
        "guid": job.guid,
        "preset": job.preset,
        "status": job.status,
        "progress": float(job.progress or 0),
        "created_date": _date(job.created_date),
    }


def output_view(output: Any, dest: str | None = None) -> dict[str, Any]:
    """An output as stored, with its name under `dest`, a presigned link to the version the
    job wrote, and its expiry."""
    view = dict(output)
    if dest and view.get("key"):
        view.setdefault("name", name_of(view["key"], from_uri(dest).key))
    view["kind"] = kind_of(view)
    if view.get("uri"):
        url, expires = download_link(from_uri(view["uri"]), view.get("version_id"))
        view.update({"url": url, "url_expires": rfc3339(expires)})
    return view


def output_views(job: Job) -> list[dict[str, Any]]:
    """The job's outputs with links, or Gone if a version the job wrote no longer exists.

    A link to a removed version would fail only at S3, without a reason, so the outputs
    route heads each recorded version first (outputs recorded without one, from an
    unversioned bucket, are served as the key's current object, unchecked).
    """
    records = [dict(o) for o in job.outputs or []]
    pinned = [o for o in records if o.get("uri") and o.get("version_id")]
    if pinned:
        with ThreadPoolExecutor(max_workers=_VERSION_CHECKS) as pool:
            kept = pool.map(lambda o: version_exists(from_uri(o["uri"]), o["version_id"]), pinned)
            gone = [o["key"] for o, exists in zip(pinned, kept, strict=True) if not exists]
        if gone:
            raise Gone(
                f"job {int(job.id)}: the version it wrote of {', '.join(gone)} was removed "
                "(by the bucket's lifecycle rule or a person); restart the job to make it again"
            )
    return [output_view(o, job.dest) for o in records]


def public_view(job: Job) -> dict[str, Any]:
    view = summary_view(job)
    view.update(
        {
            "source": job.source,
            "dest": job.dest,
            "owner": job.owner,
            "attempt": int(job.attempt),
            "speed": job.speed,
            "fps": float(job.fps) if job.fps is not None else None,
            "cpu_seconds": float(job.cpu_seconds) if job.cpu_seconds is not None else None,
            "cost": cost_view(job),
            "phases": job.phases.as_dict() if job.phases else {},
            "error": job.error.as_dict() if job.error else None,
            "outputs": [output_view(o, job.dest) for o in (job.outputs or [])],
            "probe": job.probe.as_dict() if job.probe else None,
            "plan": plan_view(job),
            "tries": tries_view(job),
            "updated_date": _date(job.updated_date),
            "notify_webhook": job.notify_webhook,
        }
    )
    if measured := quality_view(view["outputs"]):
        view["quality"] = measured  # whole in job.completed even when its outputs are cut short
    return view


def tries_view(item: Any) -> dict[str, Any]:
    """How often a job's (single) run or a task was tried in this attempt, and why each ended."""
    ended = tries.of(item)
    running = item.status in ("downloading", "probing", "encoding", "uploading", "running")
    done = item.status in ("completed", "done")
    return {"count": len(ended) + (1 if running or done else 0), "ended": ended}


def quality_view(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each measured rendition's quality, by rendition (the output's name for one file)."""
    return {
        str(o.get("rendition") or o.get("name") or o.get("key")): o["quality"]
        for o in outputs
        if o.get("quality")
    }


def cost_view(job: Job) -> dict[str, Any]:
    """What the plan expected the job to cost, and what its runs so far were billed."""
    plan = plan_view(job)
    return {
        "estimate": {"usd": plan["estimate"]["cost_usd"]} if plan else None,
        "actual": cost.actual(job.gb_seconds, job.requests),
    }


def _number(value: Any) -> int | float:
    """DynamoDB's Decimal as the number it was: whole ones as ints."""
    return int(value) if value == int(value) else float(value)


def plan_view(job: Job) -> dict[str, Any] | None:
    """The plan as the API shows it (api-contract.md); None before probing."""
    if job.plan is None:
        return None
    plan = job.plan.as_dict() if hasattr(job.plan, "as_dict") else dict(job.plan)
    estimate = plan.get("estimate") or {}
    ladder = (plan.get("details") or {}).get("ladder")
    read = dict((plan.get("details") or {}).get("source_read") or {})
    return {
        **({"ladder": json.loads(json.dumps(ladder, default=_number))} if ladder else {}),
        "mode": plan.get("mode"),
        # How the tasks read the source (ranged | download), why, and how long planning took.
        "source_read": _source_read(read),
        "chunks": len(plan.get("seams") or plan.get("chunks") or []),
        "renditions": len(plan.get("renditions") or []),
        "tasks_total": int(job.tasks_total or 0),
        "tasks_done": int(job.tasks_done or 0),
        "estimate": {
            "seconds": round(float(estimate.get("seconds") or 0), 1),
            "cost_usd": round(float(estimate.get("cost_usd") or 0), 6),
        },
    }


def _source_read(read: dict[str, Any]) -> dict[str, Any] | None:
    if not read.get("way"):
        return None  # planned before the way was recorded (downloaded)
    return {"way": read["way"], "why": read.get("why", ""), "bytes": int(read.get("bytes") or 0),
            "ready_seconds": float(read.get("ready_seconds") or 0)}  # fmt: skip


def task_views(job: Job) -> list[dict[str, Any]]:
    """The tasks of the job's current attempt, in plan order (one Query).

    A task still waiting when its job ended never runs: its message is skipped when it
    arrives. It is shown as cancelled rather than queued forever.
    """
    ended = job.status in (Status.ERROR.value, Status.CANCELLED.value)

    def status(task: Any) -> str:
        if ended and task.status in (TaskStatus.QUEUED.value, TaskStatus.WAITING.value):
            return TaskStatus.CANCELLED.value
        return str(task.status)

    return [
        {
            "id": t.task_id,
            "kind": t.task_kind,
            "chunk": int(t.chunk) if t.chunk is not None else None,
            "rendition": t.rendition,
            "renditions": list(t.renditions or ([t.rendition] if t.rendition else [])),
            "status": status(t),
            "attempt": int(t.attempt),
            "started": _date(t.started),
            "finished": _date(t.finished),
            "progress": float(t.progress or 0),
            "seconds": float(t.seconds) if t.seconds is not None else None,
            "cpu_seconds": float(t.cpu_seconds) if t.cpu_seconds is not None else None,
            "memory_mb": int(t.memory_mb) if t.memory_mb is not None else None,
            "error": t.error.as_dict() if t.error else None,
            "tries": tries_view(t),
        }
        for t in task_lifecycle.tasks_of(int(job.id), int(job.attempt))
    ]


def waiting_longer_than(seconds: float) -> list[Job]:
    """Jobs queued or restarting whose message was due more than `seconds` ago (one Query)."""
    before = int(time.time() - seconds)
    return list(Job.by_queued.query("job", range_key_condition=Job.queued_due < before))


def note_resent(job: Job) -> bool:
    """Record that the waiting job's message was sent again; False if it moved on meanwhile."""
    try:
        Job(int(job.id)).update(
            actions=[Job.queued_due.set(int(time.time()))],
            condition=(Job.status == job.status)
            & (Job.attempt == job.attempt)
            & (Job.queued_due == job.queued_due),
        )
        return True
    except PynamoDBException as exc:
        if faults.is_lost(exc):
            return False
        raise
