"""The task lifecycle: every write of a graph task's status, each one conditional.

A graph job holds no lease while its tasks run (each task holds its own). Each write is
one transaction: the task's update, conditional on its status and lease owner, with a
check (or an update) of its job, so a cancel or a restart stops every task at its next beat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from chalicelib.jobs import cost, tries
from chalicelib.jobs.lifecycle import (
    GRAPH_RUNNING,
    READ_RETRIES,
    Lost,
    Status,
)
from chalicelib.store import faults
from chalicelib.store.models import Job, Task, connection, utcnow

# A job still planning, or fanning out (encoding): a task's item may not be stored yet.
STORING_TASKS = (Status.DOWNLOADING, Status.PROBING, Status.ENCODING)

# --- the job graph: a graph job's own writes and every task status write -----------------
#
# A graph job holds no lease while its tasks run (each task holds its own). Its writes are
# conditional on (status, attempt); a task's on (status, attempt, its lease owner) plus a
# check that its job is still running that attempt, so a cancel, a failure elsewhere or a
# restart stops every task at its next beat.
#
# ```
# waiting (assemble) ─► queued ─► running ─► done
#                          ▲        ├─► queued (transient failure, host stop, lapsed lease)
#                          └────────┤─► failed (the job fails with it)
#                                   └─► cancelled (the job ended: cancelled, failed, restarted)
# ```


class TaskStatus(StrEnum):
    WAITING = "waiting"  # the assemble, until the fan-in releases it
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NotYet(Exception):
    """A task's job is still being planned (its fan-out is in flight): try again shortly."""


@dataclass(frozen=True)
class TaskLease:
    job_id: int
    attempt: int
    task_id: str
    owner: str
    seconds: int

    @property
    def key(self) -> str:
        return Task.make_key(self.attempt, self.task_id)

    def item(self) -> Task:
        return Task(self.job_id, self.key)

    def condition(self) -> Any:
        return (Task.status == TaskStatus.RUNNING.value) & (Task.lease_owner == self.owner)

    def renewal(self) -> Any:
        return Task.lease_expires.set(int(time.time() + self.seconds))


def _job_running(attempt: int) -> Any:
    return (Job.attempt == attempt) & Job.status.is_in(*(s.value for s in GRAPH_RUNNING))


def _task_write(
    job_id: int,
    key: str,
    *,
    actions: list[Any],
    condition: Any,
    job_condition: Any = None,
    job_actions: list[Any] | None = None,
) -> None:
    """A task's write, with its job checked (or updated) in the same transaction."""

    def transact() -> None:
        with TransactWrite(connection=connection()) as tx:
            tx.update(Task(job_id, key), actions=actions, condition=condition)
            if job_actions:
                tx.update(Job(job_id), actions=job_actions, condition=job_condition)
            elif job_condition is not None:
                tx.condition_check(Job, job_id, condition=job_condition)

    try:
        faults.retry_conflicts(transact)
    except PynamoDBException as exc:
        if faults.is_lost(exc):
            raise Lost(f"task {key} of job {job_id} is no longer as this writer expected") from exc
        raise


def standing(job_id: int) -> tuple[int, Status] | None:
    """The job's (attempt, status) as stored now, or None: a strongly consistent read of
    those two attributes only (a task's claim asks this, a thousand times a plan)."""
    try:
        job = Job.get(job_id, consistent_read=True, attributes_to_get=["attempt", "status"])
    except Job.DoesNotExist:
        return None
    return int(job.attempt), Status(job.status)


def task(job_id: int, attempt: int, task_id: str) -> Task | None:
    try:
        return Task.get(job_id, Task.make_key(attempt, task_id), consistent_read=True)
    except Task.DoesNotExist:
        return None


def tasks_of(job_id: int, attempt: int) -> list[Task]:
    """The tasks of one attempt, in plan order (one Query on the job's partition)."""
    rows = Task.query(job_id, Task.key.startswith(f"{attempt:04d}#"), consistent_read=True)
    return sorted(rows, key=lambda t: int(t.order))


def plant(tasks: list[Task]) -> None:
    """Store an attempt's tasks (queued; the assemble waiting). A re-plan overwrites them."""
    with Task.batch_write() as batch:
        for item in tasks:
            batch.save(item)


def claim_task(
    job_id: int, attempt: int, task_id: str, owner: str, lease_seconds: int
) -> Task | None:
    """Run the task for `owner` if it is queued or its holder's lease lapsed; None if not.

    Raises NotYet while the job is still planning this attempt (its messages can arrive
    before the job's own fan-out write is visible).
    """
    for _ in range(READ_RETRIES):
        item = task(job_id, attempt, task_id)
        if item is None:
            now_at = standing(job_id)  # before its fan-out stores the task, or after the job
            if now_at is not None and now_at[0] == attempt and now_at[1] in STORING_TASKS:
                raise NotYet(f"job {job_id} is still planning")
            return None
        now = time.time()
        status = TaskStatus(item.status)
        if status is TaskStatus.QUEUED:
            condition = Task.status == TaskStatus.QUEUED.value
        elif status is TaskStatus.RUNNING and (item.lease_expires or 0) < now:
            condition = (Task.status == TaskStatus.RUNNING.value) & (
                Task.lease_expires == item.lease_expires
            )
        else:
            return None
        started = utcnow()
        expires = int(now + lease_seconds)
        try:
            _task_write(
                job_id,
                item.key,
                actions=[
                    Task.status.set(TaskStatus.RUNNING.value),
                    Task.lease_owner.set(owner),
                    Task.lease_expires.set(expires),
                    Task.started.set(started),
                    Task.progress.set(0),
                ],
                condition=condition,
                job_condition=_job_running(attempt),
            )
        except Lost:
            now_at = standing(job_id)
            if now_at is None or now_at[0] != attempt:
                return None
            if now_at[1] in (Status.DOWNLOADING, Status.PROBING):
                raise NotYet(f"job {job_id} is still planning") from None
            if now_at[1] not in GRAPH_RUNNING:
                return None
            continue  # the task changed under us: look again
        item.status, item.lease_owner, item.lease_expires = TaskStatus.RUNNING.value, owner, expires
        item.started = started
        return item
    return None


def renew_task(lease: TaskLease, fields: dict[str, Any]) -> None:
    """Extend the task's lease (with progress); Lost when the task or its job moved on."""
    _task_write(
        lease.job_id,
        lease.key,
        actions=[lease.renewal(), *[getattr(Task, k).set(v) for k, v in fields.items()]],
        condition=lease.condition(),
        job_condition=_job_running(lease.attempt),
    )


def finish_task(
    lease: TaskLease,
    outputs: list[str],
    share: float,
    seconds: float,
    cpu_seconds: float = 0.0,
    memory_mb: int | None = None,
) -> tuple[int, int]:
    """Done, counted once on the job (one transaction); (tasks_done, tasks_total) after it.

    The counter, the job's cost sums (the run's GB-seconds and one request) and the task's
    own status change commit together, so a duplicate or a retried finish never counts twice.
    """
    billed = []
    if memory_mb is not None:
        usage = cost.Usage(seconds, memory_mb)
        billed = [Job.gb_seconds.add(usage.gb_seconds), Job.requests.add(1)]
    _task_write(
        lease.job_id,
        lease.key,
        actions=[
            Task.status.set(TaskStatus.DONE.value),
            Task.outputs.set(outputs),
            Task.finished.set(utcnow()),
            Task.seconds.set(round(seconds, 3)),
            Task.cpu_seconds.set(round(cpu_seconds, 3)),
            *([Task.memory_mb.set(memory_mb)] if memory_mb is not None else []),
            Task.progress.set(100),
            Task.lease_owner.remove(),
            Task.lease_expires.remove(),
        ],
        condition=lease.condition(),
        job_condition=(Job.attempt == lease.attempt) & (Job.status == Status.ENCODING.value),
        job_actions=[
            Job.tasks_done.add(1),
            Job.progress.add(round(share, 3)),
            Job.cpu_seconds.add(round(cpu_seconds, 3)),
            *billed,
            Job.updated_date.set(utcnow()),
        ],
    )
    return counts(lease.job_id)


def counts(job_id: int) -> tuple[int, int]:
    """(tasks_done, tasks_total) as stored now: a strongly consistent read of those two
    attributes only (the job item holds the plan; a thousand finishers need not read it)."""
    try:
        job = Job.get(job_id, consistent_read=True, attributes_to_get=["tasks_done", "tasks_total"])
    except Job.DoesNotExist:
        return 0, 1
    return int(job.tasks_done or 0), int(job.tasks_total or 0)


def release_assemble(job_id: int, attempt: int, by: str | None = None) -> bool:
    """The assemble goes from waiting to queued: True for exactly one caller per attempt.

    `by` (the finisher) is kept, so that only its message, delivered again, sends the
    assemble's again: its host may have died between this write and the send.
    """
    return release(job_id, attempt, "assemble", by)


def release(job_id: int, attempt: int, task_id: str, by: str | None = None) -> bool:
    """A waiting task (the assemble, a measurement) goes to queued: True for exactly one caller."""
    try:
        _task_write(
            job_id,
            Task.make_key(attempt, task_id),
            actions=[
                Task.status.set(TaskStatus.QUEUED.value),
                *([Task.released_by.set(by)] if by else []),
            ],
            condition=Task.status == TaskStatus.WAITING.value,
            job_condition=(Job.attempt == attempt) & (Job.status == Status.ENCODING.value),
        )
        return True
    except Lost:
        return False


def requeue_task(lease: TaskLease, *, retries: int | None = None, ended: str = "") -> None:
    """Back to queued (its message is re-sent by the caller), lease dropped; `ended` says why
    the try ended, kept on the task."""
    actions = [
        Task.status.set(TaskStatus.QUEUED.value),
        Task.lease_owner.remove(),
        Task.lease_expires.remove(),
        Task.progress.set(0),
    ]
    if retries is not None:
        actions.append(Task.retries.set(retries))
    if ended:
        actions.append(tries.ended(Task.tries, ended))
    _task_write(lease.job_id, lease.key, actions=actions, condition=lease.condition())


def end_task(
    lease: TaskLease,
    status: TaskStatus,
    message: str = "",
    log_tail: str = "",
    seconds: float | None = None,
    cpu_seconds: float | None = None,
    ended: str = "",
    memory_mb: int | None = None,
) -> None:
    """Ended without counting on the job: failed or cancelled (see `fail_graph`), or the
    assemble done (the job's completion counted it)."""
    actions = [
        Task.status.set(status.value),
        Task.finished.set(utcnow()),
        Task.lease_owner.remove(),
        Task.lease_expires.remove(),
    ]
    if seconds is not None:
        actions += [Task.seconds.set(round(seconds, 3)), Task.progress.set(100)]
    if cpu_seconds is not None:
        actions.append(Task.cpu_seconds.set(round(cpu_seconds, 3)))
    if memory_mb is not None:
        actions.append(Task.memory_mb.set(memory_mb))
    if message:
        actions.append(Task.error.set({"message": message, "log": log_tail}))
    if ended:
        actions.append(tries.ended(Task.tries, ended))
    _task_write(lease.job_id, lease.key, actions=actions, condition=lease.condition())


def lapsed_tasks(now: float) -> list[Task]:
    """Running tasks whose lease lapsed (one Query of the sparse lease index)."""
    return list(Task.by_lease.query("task", range_key_condition=Task.lease_expires < now))


def recover_lapsed_task(item: Task, *, max_recoveries: int) -> TaskStatus | None:
    """A task whose host died: queued again (its message re-sent by the caller), or failed."""
    if item.status != TaskStatus.RUNNING.value or (item.lease_expires or 0) >= time.time():
        return None
    recoveries = int(item.recoveries or 0) + 1
    condition = (Task.status == TaskStatus.RUNNING.value) & (
        Task.lease_expires == item.lease_expires
    )
    new = TaskStatus.QUEUED if recoveries <= max_recoveries else TaskStatus.FAILED
    actions = [
        Task.status.set(new.value),
        Task.recoveries.set(recoveries),
        Task.lease_owner.remove(),
        Task.lease_expires.remove(),
        tries.ended(Task.tries, tries.LOST_HOST),
    ]
    if new is TaskStatus.FAILED:
        message = f"task {item.task_id}: its host was lost {recoveries} times; restart the job"
        actions.append(Task.error.set({"message": message, "log": ""}))
    try:
        _task_write(int(item.job_id), item.key, actions=actions, condition=condition)
    except Lost:
        return None
    return new
