"""What every run of a job's work on this host shares: claim → steps → an outcome.

Two kinds of run use it. `JobRun` (chalicelib.graph.pipeline) is a job's first task:
download, probe and plan, then either fan the graph out or, for a plan of one task, encode
and publish there. `TaskRun` (chalicelib.graph.runner) is one task of a graph. Each brings
its claim, its steps and its writes; this class brings the collaborators (a `Heartbeat`
that keeps the lease and notices a cancel, `Scratch` for the files, `FfmpegRunner` for
ffmpeg, `Stops` for why to stop) and the one way a failure becomes an outcome:

- a stop (cancelled, superseded, over budget, host stopping, lease lapsed) → `stopped`;
- ffmpeg killed by a signal nobody here sent (an out-of-memory kill, a crash) → tried
  again on its own, within the retry budget, each try's end recorded (`died`);
- a deterministic media failure → `failed` at once, with ffmpeg's last lines;
- anything else is classified: a permanent storage refusal fails, the rest retry (`broke`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.config import runtime
from chalicelib.graph.lease import Heartbeat
from chalicelib.graph.run_record import Stop, StopReason, Stops
from chalicelib.graph.workspace import Stopped
from chalicelib.jobs import cost
from chalicelib.jobs.lifecycle import Lost
from chalicelib.media.ffmpeg_process import FfmpegRunner, Progress
from chalicelib.media.probe import MediaError
from chalicelib.media.scratch import Scratch
from chalicelib.media.steps import FfmpegKilled, MediaFailed
from chalicelib.store import faults, storage

log = logging.getLogger("openencoder.run")
T = TypeVar("T")
KILLED = "ffmpeg was killed"  # how FfmpegKilled's message starts, as a try's end is kept
KILLED_RETRY_DELAY_SECONDS = 2  # a killed ffmpeg is tried again at once, on another host


class Result(StrEnum):
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # nothing to do: duplicate, older attempt, or another worker owns it
    RETRY = "retry"  # requeued after a transient failure: send a delayed message
    HANDED_OFF = "handed_off"  # too long for this host: requeued and sent to the long queue
    RELEASED = "released"  # the host is stopping: requeued, its message visible again now
    HAND_BACK = "hand_back"  # the outcome could not be recorded: keep the message, delayed
    FANNED_OUT = "fanned_out"  # planned as a graph: its tasks' messages are sent


@dataclass(frozen=True)
class Outcome:
    job_id: int
    result: Result
    message: str = ""
    delay: int = 0  # RETRY: the new message's delay; HAND_BACK: when to see the message again

    @property
    def delete_message(self) -> bool:
        """Whether the message that carried this run may go: only once the job says so."""
        return self.result not in (Result.RELEASED, Result.HAND_BACK)


def killed_message(kill: FfmpegKilled, tries: int) -> str:
    """What a person reads when ffmpeg kept dying: what happened, and what to do."""
    advice = (
        "(out of memory?): give the encode function more memory or use a lighter preset"
        if kill.signal == 9
        else "(a crash?): try a lighter preset, or report the source and preset"
    )
    return f"ffmpeg was killed by signal {kill.signal} on {tries} tries {advice}"


class Run:
    """One run of a job's or a task's work: the collaborators, and failures as outcomes.

    Subclasses implement `steps` and the writes that end a run: `stopped`, `failed` and
    `retry` (back to queued, as the same attempt, with why this try ended).
    """

    def __init__(
        self,
        job_id: int,
        attempt: int,
        *,
        worker_id: str,
        deadline: float | None,
        stop: threading.Event | None,
        extra: dict[str, Any],
    ) -> None:
        self.job_id, self.attempt, self.worker_id = job_id, attempt, worker_id
        self.deadline = deadline  # time.monotonic() by which work must be handed off
        self.extra = extra
        self.lease_seconds = runtime().lease_seconds
        self.progress = Progress()
        self.stops = Stops(self.kill, deadline=deadline, host=stop)
        self.ffmpeg: FfmpegRunner | None = None  # every ffmpeg this run starts
        self.scratch: Scratch | None = None
        self.heartbeat: Heartbeat | None = None
        self.retries = 0  # tries of this attempt that ended before this one
        self.tries: list[dict[str, Any]] = []  # why each of them ended
        self.started = time.monotonic()
        self.invoked = self.started  # the run's share of its invocation starts here
        self.memory_mb = cost.memory_mb()  # the encode handler sets its function's own

    # --- what a kind of run brings ----------------------------------------------------

    noun = "job"  # what the run's messages call its work
    retry_budget = 3  # retries after the first try, for transient failures and kills

    def steps(self) -> Outcome:
        raise NotImplementedError

    def scratch_name(self) -> str:
        raise NotImplementedError

    def renew(self) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        """A renewal lost its condition: find out why and set the stop reason."""
        raise NotImplementedError

    def stopped(self, reason: StopReason) -> Outcome:
        raise NotImplementedError

    def failed(self, message: str, log_tail: str = "", ended: str = "") -> Outcome:
        raise NotImplementedError

    def retry(self, retries: int, ended: str, delay: int) -> Outcome:
        raise NotImplementedError

    # --- the run ------------------------------------------------------------------------

    def execute(self) -> Outcome:
        """Everything after a successful claim; scratch space is removed on every path."""
        heartbeat = Heartbeat(
            lease_seconds=self.lease_seconds,
            renew=self.renew,
            on_lost=self.lost,
            on_lapse=lambda: self.stops.set(StopReason.LEASE_LAPSED),
            on_beat=self.stops.watch,
            every=runtime().heartbeat_seconds,
            name=f"heartbeat-{self.job_id}-{self.noun}",
            extra=self.extra,
        )
        scratch = Scratch(Path(runtime().scratch_dir), self.scratch_name())
        self.started = time.monotonic()
        with scratch, heartbeat:
            self.scratch, self.heartbeat = scratch, heartbeat
            self.ffmpeg = FfmpegRunner(self.stops, self.progress, scratch, self.deadline)
            try:
                return self.outcome()
            except Exception:  # a failure's own write failed: keep the message
                # A bug on a failure path must neither kill the host's worker nor lose the
                # job: the message comes back after a lease, when the claim finds it lapsed.
                log.exception("could not record how the run ended", extra=self.extra)
                return Outcome(self.job_id, Result.HAND_BACK, "outcome unrecorded",
                               delay=int(self.lease_seconds))  # fmt: skip
            finally:
                self.kill()

    def outcome(self) -> Outcome:
        """The steps, and every way they can end turned into an outcome."""
        try:
            return self.steps()
        except Stop as stop:
            return self.stopped(stop.reason)
        except FfmpegKilled as kill:
            return self.died(kill)
        except (MediaFailed, MediaError, *self.media_failures()) as exc:
            return self.failed(str(exc), getattr(exc, "log_tail", ""))
        except storage.OutsideBoundary as exc:
            return self.failed(f"{exc}: outputs may only be written under the job's dest")
        except Exception as exc:  # noqa: BLE001 - classified: permanent, transient or a bug
            return self.broke(exc)

    def media_failures(self) -> tuple[type[Exception], ...]:
        """More exceptions that fail the run at once (the job's own run has a few)."""
        return ()

    def died(self, kill: FfmpegKilled) -> Outcome:
        """ffmpeg died of a signal: transient, so tried again, until the budget is spent."""
        ended = self.redact(str(kill))
        retries = self.retries + 1
        log.warning("%s (try %d)", ended, retries, extra=self.extra)
        if retries > self.retry_budget:
            kills = 1 + sum(str(t.get("ended", "")).startswith(KILLED) for t in self.tries)
            tail = (
                self.redact(kill.log_tail) or f"(ffmpeg printed nothing before {kill.signal_name})"
            )
            return self.failed(killed_message(kill, kills), tail, ended)
        return self.retry(retries, ended, KILLED_RETRY_DELAY_SECONDS)

    def broke(self, exc: BaseException) -> Outcome:
        """Neither media nor a stop: permanent storage refusals fail; the rest retry."""
        fault = faults.classify(exc)
        reason = self.redact(faults.describe(exc))
        if fault is faults.Fault.PERMANENT and not faults.is_backend_error(exc):
            log.exception("unexpected failure", extra=self.extra)
        else:
            log.warning("failed: %s", reason, extra=self.extra)
        if fault is faults.Fault.PERMANENT and faults.is_backend_error(exc):
            return self.failed(f"storage refused the {self.noun}: {reason}", ended=reason)
        retries = self.retries + 1
        if retries > self.retry_budget:
            return self.failed(
                f"gave up after {retries - 1} retries; last failure: {reason}", ended=reason
            )
        return self.retry(retries, reason, min(900, 5 * 2**retries + random.randint(0, 5)))

    # --- collaborators' small services ------------------------------------------------------

    def kill(self) -> None:
        if self.ffmpeg is not None:
            self.ffmpeg.kill()

    def redact(self, text: str) -> str:
        return self.scratch.redact(text) if self.scratch is not None else text

    def cpu(self) -> float:
        return self.ffmpeg.cpu_seconds if self.ffmpeg is not None else 0.0

    def took(self) -> float:
        return time.monotonic() - self.started

    def usage(self) -> cost.Usage:
        """What this run is billed: its seconds since the message arrived, at its memory."""
        return cost.Usage(time.monotonic() - self.invoked, self.memory_mb)

    def transfer(self, what: str, call: Callable[[], T]) -> T:
        """An S3 transfer, transient failures retried for up to a lease's length."""
        try:
            return faults.retry(
                call, until=time.monotonic() + self.lease_seconds, what=what, extra=self.extra
            )
        except (Stopped, storage.Stopped):
            self.stops.watch()
            self.stops.check()
            raise

    def closing(self, what: str, write: Callable[[], Any]) -> bool | None:
        """A closing write: True if recorded, False if things moved on, None if unrecorded."""
        try:
            faults.retry(
                write, until=time.monotonic() + self.lease_seconds, what=what, extra=self.extra
            )
            return True
        except Lost:
            return False
        except Exception as exc:  # noqa: BLE001 - reported to the caller as unrecorded
            log.warning("%s: %s", what, faults.describe(exc), extra=self.extra)
            return None
