"""The scheduled reconcile: droplets sized to the long queue, dead workers' jobs recovered.

`decide` is pure (a table of cases tests it); `run` gathers its inputs from SQS,
DynamoDB and DigitalOcean, holds a lock so two runs never both create droplets,
logs every decision with its inputs, and carries it out.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from chalicelib.config import Settings, runtime
from chalicelib.fleet import pool_lock
from chalicelib.jobs import lifecycle, records, task_lifecycle
from chalicelib.jobs.lifecycle import Status
from chalicelib.store import faults, queues
from chalicelib.store.models import Job, WorkerState

log = logging.getLogger("openencoder.reconcile")
MAX_LEASE_RECOVERIES = 3


@dataclass(frozen=True)
class Droplet:
    id: int
    created_at: float


@dataclass(frozen=True)
class Beat:
    droplet_id: int | None
    state: str
    last_seen: float
    idle_since: float | None


@dataclass(frozen=True)
class Limits:
    minimum: int
    maximum: int
    jobs_per_droplet: int
    hourly_budget: float
    hourly_price: float
    idle_grace: float
    boot_timeout: float

    @classmethod
    def from_settings(cls, s: Settings, hourly_price: float) -> Limits:
        return cls(s.droplet_min, s.droplet_max, s.jobs_per_droplet, s.hourly_budget,
                   hourly_price, s.idle_grace_seconds, s.boot_timeout_seconds)  # fmt: skip


@dataclass
class Plan:
    desired: int
    create: int = 0
    remove: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def decide(
    *,
    backlog: int,
    droplets: list[Droplet],
    beats: list[Beat],
    leased_droplets: set[int],
    limits: Limits,
    now: float,
) -> Plan:
    """How many droplets to create and which to remove."""
    wanted = math.ceil(backlog / max(1, limits.jobs_per_droplet))
    desired = min(max(wanted, limits.minimum), limits.maximum)
    if limits.hourly_price > 0:
        affordable = int(limits.hourly_budget // limits.hourly_price)
        if affordable < desired:
            desired = affordable
    plan = Plan(desired=desired)
    by_droplet = {b.droplet_id: b for b in beats if b.droplet_id is not None}
    healthy = []
    for droplet in droplets:
        beat = by_droplet.get(droplet.id)
        silent_since = beat.last_seen if beat else droplet.created_at
        if now - silent_since > limits.boot_timeout and droplet.id not in leased_droplets:
            plan.remove.append(droplet.id)
            plan.reasons.append(
                f"droplet {droplet.id}: no heartbeat for {now - silent_since:.0f} s"
            )
        else:
            healthy.append(droplet)
    if len(healthy) < desired:
        plan.create = desired - len(healthy)
        plan.reasons.append(f"{len(healthy)} healthy droplets, {desired} wanted")
    surplus = len(healthy) - desired
    if surplus > 0:
        idle = []
        for droplet in healthy:
            beat = by_droplet.get(droplet.id)
            if droplet.id in leased_droplets or beat is None or beat.state != "idle":
                continue
            idle_for = now - (beat.idle_since or now)
            if idle_for > limits.idle_grace:
                idle.append((idle_for, droplet.id))
        for idle_for, droplet_id in sorted(idle, reverse=True)[:surplus]:
            plan.remove.append(droplet_id)
            plan.reasons.append(
                f"droplet {droplet_id}: idle {idle_for:.0f} s, {surplus} more than wanted"
            )
    return plan


# --- stale leases -----------------------------------------------------------------


def leased_jobs() -> list[Job]:
    """Every job holding a lease, live or expired: one Query of the sparse lease index."""
    return usable_leases(Job.by_lease.query("job"))


def usable_leases(found: Iterable[Job]) -> list[Job]:
    """The jobs that can be judged; a half-written one is logged with its key and left out.

    One odd item (no expiry, attempt or status) must never stop the tick for the others.
    """
    usable = []
    for job in found:
        missing = [
            name for name in ("lease_expires", "attempt", "status") if getattr(job, name) is None
        ]
        if missing:
            log.warning(json.dumps({"skipped": "job", "id": _key(job.id), "missing": missing}))
            continue
        usable.append(job)
    return usable


def _key(value: object) -> object:
    return int(value) if isinstance(value, (int, float)) else str(value)


def recover_expired_leases(now: float, leased: list[Job] | None = None) -> list[tuple[int, str]]:
    """Jobs whose worker died: back on their queue as the same attempt, or error past the bound."""
    done = []
    for job in leased_jobs() if leased is None else leased:
        if job.lease_expires >= int(now) or job.status not in lifecycle.RUNNING:
            continue
        try:
            became = lifecycle.recover_lapsed(job, max_recoveries=MAX_LEASE_RECOVERIES)
            if became is Status.QUEUED:
                queues.send_job(job.queue, int(job.id), int(job.attempt))
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the sweep
            # Recorded but not sent: the job waits queued, and the sweep below re-sends it.
            log.warning("job %s: lease recovery failed: %s", job.id, faults.describe(exc))
            continue
        if became is not None:
            done.append((int(job.id), "requeued" if became is Status.QUEUED else "error"))
    return done


def recover_lapsed_tasks(now: float) -> list[tuple[int, str, str]]:
    """Graph tasks whose host died: queued again with their message, or failed past the bound
    (and their job with them)."""
    from chalicelib.config import graph_settings
    from chalicelib.store import messages

    bound = graph_settings().task_lease_recoveries
    done = []
    for item in task_lifecycle.lapsed_tasks(now):
        try:
            became = task_lifecycle.recover_lapsed_task(item, max_recoveries=bound)
            if became is task_lifecycle.TaskStatus.QUEUED:
                message = messages.TaskMessage(
                    job_id=int(item.job_id), attempt=int(item.attempt), task=item.task_id
                )
                queues.send(item.queue or "encode", message)
            elif became is task_lifecycle.TaskStatus.FAILED:
                why = f"task {item.task_id}: its host was lost too often; restart the job"
                lifecycle.fail_graph(int(item.job_id), int(item.attempt), why)
        except Exception as exc:  # noqa: BLE001 - one task's failure must not stop the sweep
            why = faults.describe(exc)
            log.warning("task %s of job %s: recovery failed: %s", item.task_id, item.job_id, why)
            continue
        if became is not None:
            done.append((int(item.job_id), item.task_id, became.value))
    return done


def live_task_owners(now: float) -> set[str]:
    """Hosts holding a live task lease (a droplet running a task must not be removed)."""
    from chalicelib.store.models import Task

    rows = Task.by_lease.query("task", range_key_condition=Task.lease_expires >= int(now))
    return {t.lease_owner for t in rows if t.lease_owner}


def resend_waiting(seconds: float | None = None) -> list[int]:
    """Jobs queued or restarting for longer than the bound past their message's due time:
    send their message again (duplicates are harmless: only one claim can win)."""
    seconds = runtime().queued_resend_seconds if seconds is None else seconds
    sent = []
    for job in records.waiting_longer_than(seconds):
        try:
            if records.note_resent(job):
                queues.send_job(job.queue, int(job.id), int(job.attempt))
                sent.append(int(job.id))
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            log.warning("job %s: could not re-send its message: %s", job.id, faults.describe(exc))
    return sent


# --- the run ---------------------------------------------------------------------


def backlog() -> int:
    attributes = queues.sqs().get_queue_attributes(
        QueueUrl=queues.queue_url("long"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _epoch(created_at: str) -> float:
    return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _beats(workers: list[WorkerState]) -> list[Beat]:
    """Heartbeats of droplet workers; one without a droplet id or a time is logged and skipped."""
    beats = []
    for w in workers:
        try:
            if w.droplet_id is None or w.last_seen is None or not w.state:
                raise ValueError("no droplet id, state or last-seen time")
            idle_since = float(w.idle_since) if w.idle_since else None
            beats.append(Beat(int(w.droplet_id), w.state, float(w.last_seen), idle_since))
        except (TypeError, ValueError) as exc:
            # Once per worker and container: a worker off any droplet (the local stack's)
            # beats all day, and a tick every few seconds must not repeat it each time.
            if str(w.worker_id) not in _SKIPPED_WORKERS:
                _SKIPPED_WORKERS.add(str(w.worker_id))
                entry = {"skipped": "heartbeat", "worker": str(w.worker_id), "why": str(exc)}
                log.warning(json.dumps(entry))
    return beats


_SKIPPED_WORKERS: set[str] = set()


def _droplets(machines: list, now: float) -> list[Droplet]:
    droplets = []
    for m in machines:
        try:
            droplets.append(Droplet(m.id, _epoch(m.created_at)))
        except (TypeError, ValueError):
            # Unknown age: counted as just created, so it is neither replaced nor lost.
            log.warning(json.dumps({"odd": "droplet", "id": m.id, "created_at": str(m.created_at)}))
            droplets.append(Droplet(m.id, now))
    return droplets


def run(now: float | None = None) -> Plan | None:
    from chalicelib.errors import OpenEncoderError
    from chalicelib.fleet import digitalocean, droplet_pool, heartbeats
    from chalicelib.jobs import runtime_settings
    from chalicelib.store.secret_params import digitalocean_token

    now = time.time() if now is None else now
    token = pool_lock.acquire(now)
    if token is None:
        log.info(json.dumps({"decision": "skipped", "why": "another reconcile holds the lock"}))
        return None
    try:
        leased_now = leased_jobs()
        # Read before recovery: recovering a job clears its lease on the item we hold.
        live_owners = {j.lease_owner for j in leased_now if j.lease_expires >= int(now)}
        live_owners |= live_task_owners(now)
        recovered = recover_expired_leases(now, leased_now)
        if recovered:
            log.info(json.dumps({"decision": "recovered leases", "jobs": recovered}))
        tasks = recover_lapsed_tasks(now)
        if tasks:
            log.info(json.dumps({"decision": "recovered task leases", "tasks": tasks}))
        resent = resend_waiting()
        if resent:
            log.info(json.dumps({"decision": "re-sent waiting jobs", "jobs": resent}))
        if not digitalocean_token():
            log.info(json.dumps({"decision": "no droplets", "why": "machines not configured"}))
            return None
        s = runtime_settings.effective(max_age=0)  # the admin's knobs, read on every tick
        workers = heartbeats.all_workers()
        beats = _beats(workers)
        droplet_of = {w.worker_id: int(w.droplet_id) for w in workers if w.droplet_id is not None}
        leased = {droplet_of[owner] for owner in live_owners if owner in droplet_of}
        prices = {x["slug"]: float(x["price_hourly"]) for x in digitalocean.sizes()}
        droplets = _droplets(digitalocean.list_machines(), now)
        limits = Limits.from_settings(s, prices.get(s.droplet_size, 0.0))
        depth = backlog()
        plan = decide(backlog=depth, droplets=droplets, beats=beats, leased_droplets=leased,
                      limits=limits, now=now)  # fmt: skip
        inputs = {
            "backlog": depth,
            "droplets": [d.id for d in droplets],
            "leased": sorted(leased),
            "beats": [asdict(b) for b in beats],
            "limits": asdict(limits),
        }
        decision = {"create": plan.create, "remove": plan.remove, "desired": plan.desired}
        log.info(
            json.dumps(
                {"decision": "droplets", **decision, "reasons": plan.reasons, "inputs": inputs}
            )
        )
        if plan.create:
            droplet_pool.launch(s.droplet_region, s.droplet_size, plan.create)
        for droplet_id in plan.remove:
            try:
                droplet_pool.remove(droplet_id)
            except OpenEncoderError as exc:
                log.warning("could not remove droplet %s: %s", droplet_id, exc.message)
        return plan
    finally:
        pool_lock.release(token)
