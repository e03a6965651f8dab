"""The job lifecycle: every write of a job's status, each one conditional, lives here.

A status change is one DynamoDB transaction: the job's update, conditional on its
current status (and attempt, and lease owner when a worker writes), plus the stats
counters of the old and new status. A failed condition raises `Lost` (someone else
changed the job); any other failure is raised as it came, for `faults.classify`.
Nothing here reads and then writes without a condition.

```
queued ─► downloading ─► probing ─► encoding ─► uploading ─► completed
   any non-terminal ─► error | cancelled
   completed | error | cancelled ─► restarting ─► (claim) ─► downloading ...
```
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Conflict, NotFound
from chalicelib.jobs import events, tries
from chalicelib.store import faults, stats
from chalicelib.store.models import Job, SystemItem, connection, rfc3339, utcnow

log = logging.getLogger("openencoder.lifecycle")
T = TypeVar("T")


class Status(StrEnum):
    QUEUED = "queued"
    RESTARTING = "restarting"
    DOWNLOADING = "downloading"
    PROBING = "probing"
    ENCODING = "encoding"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"


WAITING = (Status.QUEUED, Status.RESTARTING)
RUNNING = (Status.DOWNLOADING, Status.PROBING, Status.ENCODING, Status.UPLOADING)
TERMINAL = (Status.COMPLETED, Status.ERROR, Status.CANCELLED)
ACTIVE = WAITING + RUNNING
GRAPH_RUNNING = (Status.ENCODING, Status.UPLOADING)  # a graph job while its tasks run
READ_RETRIES = 4  # optimistic loops: re-read and retry when another writer got in between


class Lost(Exception):
    """A status write's condition no longer holds: another writer changed the job first."""


@dataclass(frozen=True)
class Lease:
    """Who holds a job while it runs: attempt, owner and how long a renewal lasts."""

    job_id: int
    attempt: int
    owner: str
    seconds: int

    def condition(self) -> Any:
        return (Job.attempt == self.attempt) & (Job.lease_owner == self.owner)

    def renewal(self) -> Any:
        return Job.lease_expires.set(int(time.time() + self.seconds))


def _write(job_id: int, *, old: Status, new: Status, condition: Any, actions: list[Any]) -> None:
    """Move job `job_id` from `old` to `new` if `condition` holds, counters included."""
    changes = [Job.status.set(new.value), Job.updated_date.set(utcnow()), *actions]
    full = (Job.status == old.value) & condition

    def transact() -> None:
        counters = stats.changes(old.value, new.value)
        if not counters:
            Job(job_id).update(actions=changes, condition=full)
            return
        with TransactWrite(connection=connection()) as tx:
            tx.update(Job(job_id), actions=changes, condition=full)
            for item, updates in counters:
                tx.update(item, actions=updates)

    try:
        faults.retry_conflicts(transact)
    except PynamoDBException as exc:
        if faults.is_lost(exc):
            raise Lost(f"job {job_id} is no longer {old.value} as this writer expected") from exc
        raise
    log.info(
        "job %s: %s -> %s",
        job_id,
        old.value,
        new.value,
        extra={"job_id": job_id, "status": new.value},
    )
    if new in TERMINAL:
        events.job_finished(job_id, new.value)  # webhooks: job.completed/failed/cancelled


def _sets(fields: dict[str, Any]) -> list[Any]:
    return [getattr(Job, name).set(value) for name, value in fields.items()]


def _releasing() -> list[Any]:
    return [Job.lease_owner.remove(), Job.lease_expires.remove()]


def current(job_id: int) -> Job | None:
    """The job as stored now (a strongly consistent read), or None."""
    try:
        return Job.get(job_id, consistent_read=True)
    except Job.DoesNotExist:
        return None


def status_of(job: Job) -> Status:
    return Status(job.status)


# --- creation ----------------------------------------------------------------


def create(job: Job) -> None:
    """Store a new job as queued, with the id and status counters, in one transaction."""
    job.status = Status.QUEUED.value
    job.queued_due = int(time.time())

    def transact() -> None:
        with TransactWrite(connection=connection()) as tx:
            tx.save(job, condition=Job.id.does_not_exist())
            tx.update(SystemItem("jobs-total"), actions=[SystemItem.value.add(1)])
            for item, updates in stats.changes(None, Status.QUEUED.value):
                tx.update(item, actions=updates)

    faults.retry_conflicts(transact)
    log.info("job %s: created, queued", job.id, extra={"job_id": int(job.id), "attempt": 1})


# --- a worker's writes (each conditional on its lease) -------------------------


def claim(job_id: int, attempt: int, owner: str, lease_seconds: int) -> Job | None:
    """Take the job for `owner` if it waits, or if its holder's lease lapsed; None if not."""
    for _ in range(READ_RETRIES):
        job = current(job_id)
        if job is None or int(job.attempt) != attempt:
            return None
        status = status_of(job)
        now = time.time()
        condition = Job.attempt == attempt
        if status in RUNNING and job.lease_expires is not None and job.lease_expires < now:
            condition &= Job.lease_expires == job.lease_expires  # exactly the lapsed lease
        elif status not in WAITING:
            return None
        phases = {"claimed": rfc3339(utcnow())}
        expires = int(now + lease_seconds)
        try:
            _write(
                job_id,
                old=status,
                new=Status.DOWNLOADING,
                condition=condition,
                actions=[
                    Job.lease_owner.set(owner),
                    Job.lease_expires.set(expires),
                    Job.progress.set(0),
                    Job.phases.set(phases),
                    Job.queued_due.remove(),
                ],
            )
        except Lost:
            continue
        job.status, job.lease_owner, job.lease_expires = Status.DOWNLOADING.value, owner, expires
        job.phases, job.progress, job.queued_due = phases, 0, None
        return job
    return None


def advance(lease: Lease, old: Status, new: Status, fields: dict[str, Any]) -> None:
    """The next phase of a running job (and fields that go with it), renewing the lease."""
    _write(
        lease.job_id,
        old=old,
        new=new,
        condition=lease.condition(),
        actions=[lease.renewal(), *_sets(fields)],
    )


def renew(lease: Lease, status: Status, fields: dict[str, Any]) -> None:
    """Extend the lease (with progress fields); no status change, so no counters."""
    try:
        Job(lease.job_id).update(
            actions=[lease.renewal(), Job.updated_date.set(utcnow()), *_sets(fields)],
            condition=lease.condition() & (Job.status == status.value),
        )
    except PynamoDBException as exc:
        if faults.is_lost(exc):
            raise Lost(f"job {lease.job_id}: lease of {lease.owner} is gone") from exc
        raise


def complete(lease: Lease, old: Status, fields: dict[str, Any]) -> None:
    """Completed, with outputs, and the lease dropped in the same write."""
    _write(
        lease.job_id,
        old=old,
        new=Status.COMPLETED,
        condition=lease.condition(),
        actions=[*_releasing(), *_sets(fields)],
    )


def fail_run(lease: Lease, old: Status, message: str, log_tail: str = "", ended: str = "") -> None:
    actions = [Job.error.set({"message": message, "log": log_tail}), *_releasing()]
    if ended:
        actions.append(tries.ended(Job.tries, ended))
    _write(lease.job_id, old=old, new=Status.ERROR, condition=lease.condition(), actions=actions)


def requeue(
    lease: Lease,
    old: Status,
    *,
    queue: str,
    delay: int = 0,
    retries: int | None = None,
    ended: str = "",
) -> None:
    """Back to queued as the same attempt, lease released, its message due after `delay`."""
    actions = [
        *_releasing(),
        Job.queue.set(queue),
        Job.progress.set(0),
        Job.queued_due.set(int(time.time()) + delay),
    ]
    if retries is not None:
        actions.append(Job.retries.set(retries))
    if ended:
        actions.append(tries.ended(Job.tries, ended))
    _write(lease.job_id, old=old, new=Status.QUEUED, condition=lease.condition(), actions=actions)


def release(lease: Lease, cpu_seconds: float = 0.0, gb_seconds: float | None = None) -> None:
    """Drop the lease: the job was ended by someone else (cancelled), or its tasks hold
    their own leases from here on (a fan-out, adding the CPU time its split took, and the
    run's GB-seconds and request to the job's cost)."""
    actions = _releasing()
    if cpu_seconds:
        actions.append(Job.cpu_seconds.add(round(cpu_seconds, 3)))
    if gb_seconds is not None:
        actions += [Job.gb_seconds.add(round(gb_seconds, 3)), Job.requests.add(1)]
    try:
        Job(lease.job_id).update(actions=actions, condition=lease.condition())
    except PynamoDBException as exc:
        if not faults.is_lost(exc):
            raise


# --- the API's writes ---------------------------------------------------------------


def _get(job_id: int) -> Job:
    job = current(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


def cancel(job_id: int) -> Job:
    """Cancelled from any non-terminal status; Conflict when it has already ended."""
    for _ in range(READ_RETRIES):
        job = _get(job_id)
        status = status_of(job)
        if status not in ACTIVE:
            raise Conflict(f"job {job.id} is already {status.value}: there is nothing to cancel")
        try:
            _write(
                job_id,
                old=status,
                new=Status.CANCELLED,
                condition=Job.attempt == job.attempt,
                actions=[Job.queued_due.remove()],
            )
        except Lost:
            continue
        job.status = Status.CANCELLED.value
        return job
    raise Conflict(f"job {job_id} changed while it was being cancelled: try again")


def restart(job_id: int) -> Job:
    """A finished job as its next attempt, waiting for its message."""
    for _ in range(READ_RETRIES):
        job = _get(job_id)
        status = status_of(job)
        if status not in TERMINAL:
            raise Conflict(
                f"job {job.id} is {status.value}: only a completed, failed or cancelled job "
                "can be restarted"
            )
        due = int(time.time())
        try:
            _write(
                job_id,
                old=status,
                new=Status.RESTARTING,
                condition=Job.attempt == job.attempt,
                actions=[
                    Job.attempt.add(1),
                    Job.progress.set(0),
                    Job.retries.set(0),
                    Job.phases.set({}),
                    Job.outputs.set([]),
                    Job.error.remove(),
                    Job.probe.remove(),
                    Job.speed.remove(),
                    Job.fps.remove(),
                    # A new attempt plans again; its tasks are keyed by the new attempt.
                    Job.plan.remove(),
                    Job.tasks_total.remove(),
                    Job.tasks_done.remove(),
                    Job.queued_due.set(due),
                    *_releasing(),
                ],
            )
        except Lost:
            continue
        job.status, job.attempt, job.queued_due = Status.RESTARTING.value, int(job.attempt) + 1, due
        return job
    raise Conflict(f"job {job_id} changed while it was being restarted: try again")


def fail(
    job_id: int, attempt: int, message: str, *, expect: tuple[Status, ...], log_tail: str = ""
) -> bool:
    """End a job in error if it is still in one of `expect` as `attempt`; False if not."""
    for _ in range(READ_RETRIES):
        job = current(job_id)
        if job is None or int(job.attempt) != attempt or status_of(job) not in expect:
            return False
        try:
            _write(
                job_id,
                old=status_of(job),
                new=Status.ERROR,
                condition=Job.attempt == attempt,
                actions=[
                    Job.error.set({"message": message, "log": log_tail}),
                    Job.queued_due.remove(),
                    *_releasing(),
                ],
            )
            return True
        except Lost:
            continue
    return False


# --- the reconcile's writes ------------------------------------------------------------


def recover_lapsed(job: Job, *, max_recoveries: int) -> Status | None:
    """A running job whose lease lapsed: queued again, or error past the bound; None if not."""
    status = status_of(job)
    if status not in RUNNING or job.lease_expires is None or job.lease_expires >= time.time():
        return None
    recoveries = int(job.retries or 0) + 1
    condition = (Job.attempt == job.attempt) & (Job.lease_expires == job.lease_expires)
    try:
        if recoveries > max_recoveries:
            message = f"its worker was lost {recoveries} times; restart it to try again"
            _write(
                int(job.id),
                old=status,
                new=Status.ERROR,
                condition=condition,
                actions=[
                    Job.error.set({"message": message, "log": ""}),
                    *_releasing(),
                    tries.ended(Job.tries, tries.LOST_HOST),
                ],
            )
            return Status.ERROR
        _write(
            int(job.id),
            old=status,
            new=Status.QUEUED,
            condition=condition,
            actions=[
                *_releasing(),
                Job.retries.set(recoveries),
                Job.progress.set(0),
                Job.queued_due.set(int(time.time())),
                tries.ended(Job.tries, tries.LOST_HOST),
            ],
        )
        return Status.QUEUED
    except Lost:
        return None  # the worker came back, or another run got there first


def fan_out(lease: Lease, old: Status, fields: dict[str, Any]) -> None:
    """The job starts running as a graph: encoding, with its plan and a zeroed fan-in counter."""
    advance(lease, old, Status.ENCODING, {**fields, "tasks_done": 0})


def graph_advance(
    job_id: int, attempt: int, old: Status, new: Status, fields: dict[str, Any]
) -> None:
    """A graph job's own step (encoding → uploading → completed), on (status, attempt)."""
    _write(job_id, old=old, new=new, condition=Job.attempt == attempt, actions=_sets(fields))


def fail_graph(job_id: int, attempt: int, message: str, log_tail: str = "") -> bool:
    """The job fails with one task's error and ffmpeg tail; False if it already ended."""
    return fail(job_id, attempt, message, expect=ACTIVE, log_tail=log_tail)
