"""One run's hold on its job item: why the run must stop, and every write it makes.

Writes go through `lifecycle` with the run's lease; a transient failure is retried
while the lease holds, a lost condition is explained (cancelled, or someone else owns
the job now), and a failure that outlasts the lease stops the run as `UNRECORDED`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from chalicelib.graph.lease import Heartbeat
from chalicelib.jobs import lifecycle
from chalicelib.jobs.lifecycle import Lease, Lost, Status
from chalicelib.store import faults
from chalicelib.store.models import Job, rfc3339, utcnow

log = logging.getLogger("openencoder.pipeline")


class StopReason(Enum):
    CANCELLED = "cancelled by a client"
    SUPERSEDED = "another attempt or worker owns the job now"
    OVER_BUDGET = "too long for this host"
    HOST_STOPPING = "this host is stopping"
    LEASE_LAPSED = "the lease could not be renewed for longer than it lasts"
    UNRECORDED = "the job's state could not be recorded"


class Stop(Exception):
    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class Stops:
    """The first reason this run must stop, set from any thread; setting it kills ffmpeg.

    It also keeps the host's clock: past the run's deadline (Lambda's hand-off time) or
    once the host is stopping, the run must stop as well.
    """

    def __init__(
        self,
        kill: Callable[[], None],
        *,
        deadline: float | None = None,
        host: threading.Event | None = None,
    ) -> None:
        self._reason: StopReason | None = None
        self._lock = threading.Lock()
        self._kill = kill
        self.deadline = deadline  # time.monotonic() by which work must be handed off
        self.host = host or threading.Event()

    def watch(self) -> None:
        """Each heartbeat: the deadline passed or the host stopping become stop reasons."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.set(StopReason.OVER_BUDGET)
        if self.host.is_set():
            self.set(StopReason.HOST_STOPPING)

    def wanted(self) -> bool:
        """Polled by transfers between blocks: stop now, whatever the reason."""
        return self.is_set() or self.host.is_set()

    def set(self, reason: StopReason) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason
        self._kill()

    @property
    def reason(self) -> StopReason | None:
        return self._reason

    def is_set(self) -> bool:
        return self._reason is not None

    def check(self) -> None:
        if self._reason is not None:
            raise Stop(self._reason)


class RunRecord:
    """The job as this run writes it: phase, phase times, and the writes themselves."""

    def __init__(self, lease: Lease, stops: Stops, extra: dict[str, Any]) -> None:
        self.lease = lease
        self.stops = stops
        self.extra = extra
        self.phase = Status.QUEUED
        self.phases: dict[str, str] = {}
        self.lock = threading.Lock()  # one job write at a time: phase changes and beats
        self.heartbeat: Heartbeat | None = None

    def claimed(self, job: Job) -> None:
        self.phase = Status.DOWNLOADING
        raw = job.phases
        stored = raw.as_dict() if hasattr(raw, "as_dict") else dict(raw or {})
        self.phases = stored or {"claimed": rfc3339(utcnow())}

    def stamp(self, status: Status) -> dict[str, str]:
        self.phases[status.value] = rfc3339(utcnow())
        return dict(self.phases)

    def retry_until(self) -> float:
        return self.heartbeat.retry_until() if self.heartbeat else time.monotonic() + 5

    # --- writes ------------------------------------------------------------------

    def advance(self, status: Status, fields: dict[str, Any]) -> None:
        self.stops.check()
        self.record(status, lambda: lifecycle.advance(
            self.lease, self.phase, status, {"phases": self.stamp(status), **fields}
        ))  # fmt: skip
        log.info("phase %s", status.value, extra=self.extra)

    def complete(self, fields: dict[str, Any]) -> None:
        self.record(Status.COMPLETED, lambda: lifecycle.complete(
            self.lease, self.phase, {"phases": self.stamp(Status.COMPLETED), **fields}
        ))  # fmt: skip

    def record(self, status: Status, write: Callable[[], None]) -> None:
        """Write a status change, retrying transient failures while the lease holds."""
        with self.lock:
            try:
                faults.retry(write, until=self.retry_until(), what=f"recording {status.value}",
                             extra=self.extra)  # fmt: skip
            except Lost:
                # A retried write whose first try was applied fails its condition: check.
                if not self.is_now(status):
                    self.explain_lost()
                    self.stops.check()
                    raise Stop(StopReason.SUPERSEDED) from None
            except faults.StillFailing:
                self.stops.set(StopReason.UNRECORDED)
                raise Stop(StopReason.UNRECORDED) from None
            if self.heartbeat is not None:
                self.heartbeat.confirm()
            self.phase = status

    def renew(self, fields: dict[str, Any]) -> None:
        with self.lock:
            lifecycle.renew(self.lease, self.phase, fields)

    def close(self, what: str, write: Callable[[], None]) -> bool | None:
        """A closing write: True if recorded, False if the job moved on, None if unrecorded."""
        try:
            faults.retry(write, until=time.monotonic() + self.lease.seconds, what=what,
                         extra=self.extra)  # fmt: skip
            return True
        except Lost:
            return False
        except Exception as exc:  # noqa: BLE001 - unrecorded: the message must stay
            log.warning("%s: %s", what, faults.describe(exc), extra=self.extra)
            return None

    # --- reads -------------------------------------------------------------------

    def read(self) -> Job | None:
        """The job as stored, retried within the lease; None if it cannot be read."""
        try:
            return faults.retry(lambda: lifecycle.current(self.lease.job_id),
                                until=self.retry_until(), what="reading the job",
                                extra=self.extra)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - unknown: callers act as if nothing is known
            log.warning("could not read the job: %s", faults.describe(exc), extra=self.extra)
            return None

    def is_now(self, status: Status) -> bool:
        job = self.read()
        if job is None or int(job.attempt) != self.lease.attempt or job.status != status.value:
            return False
        return status in lifecycle.TERMINAL or job.lease_owner == self.lease.owner

    def explain_lost(self) -> None:
        """A conditional write failed: find out whether the job was cancelled or taken."""
        job = self.read()
        if job is None:
            return  # unknown: the heartbeat's lapse rule decides if it stays that way
        if int(job.attempt) != self.lease.attempt or job.lease_owner != self.lease.owner:
            self.stops.set(StopReason.SUPERSEDED)
        elif job.status == Status.CANCELLED.value:
            self.stops.set(StopReason.CANCELLED)
        elif job.status != self.phase.value:
            self.stops.set(StopReason.SUPERSEDED)
