"""One task of a job's graph on this host: claim → its steps → done (fan-in), or an outcome.

The same collaborators as a job's run: a `Heartbeat` keeps the task's lease (and, through
the job check in every renewal, notices a cancel, another task's failure or a restart
within one beat), `Scratch` holds the files, `FfmpegRunner` runs ffmpeg, `Stops` carries
why to stop, and `TaskMedia` (chalicelib.graph.kinds) does the media of each kind:

- encode: one rendition of one chunk, or all of them from one decode, from its piece;
- audio: the job's audio, once, for the whole timeline;
- thumbnails: one chunk's pictures (and the poster if it falls there);
- assemble: join the chunks (stream copy), add the audio, package, tile the sprite,
  publish into dest, complete the job. Only the fan-in releases it, once per attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.config import graph_settings, runtime
from chalicelib.graph import build, kinds
from chalicelib.graph.lease import Heartbeat
from chalicelib.graph.pipeline import Outcome, Result
from chalicelib.graph.plan import Kind
from chalicelib.graph.run_record import Stop, StopReason, Stops
from chalicelib.graph.workspace import Stopped, Workspace
from chalicelib.jobs import lifecycle
from chalicelib.jobs.lifecycle import Lost, NotYet, Status, TaskLease, TaskStatus
from chalicelib.jobs.outputs import record_versions
from chalicelib.media.ffmpeg_process import FfmpegRunner, Progress
from chalicelib.media.probe import MediaError
from chalicelib.media.scratch import Scratch
from chalicelib.media.steps import MediaFailed
from chalicelib.store import faults, messages, queues, storage
from chalicelib.store.models import Job, rfc3339, utcnow

log = logging.getLogger("openencoder.graph")
T = TypeVar("T")
NOT_YET_DELAY_SECONDS = 3


class TaskRun:
    """One task of one attempt of one job on this host."""

    def __init__(
        self,
        message: messages.TaskMessage,
        *,
        worker_id: str,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.message = message
        self.job_id, self.attempt, self.task_id = message.job_id, message.attempt, message.task
        self.worker_id = worker_id
        self.deadline = deadline
        self.lease = TaskLease(
            self.job_id, self.attempt, self.task_id, worker_id, runtime().lease_seconds
        )
        self.extra = {"job_id": self.job_id, "attempt": self.attempt, "task": self.task_id}
        self.workspace = Workspace(self.job_id, self.attempt)
        self.progress = Progress()
        self.stops = Stops(self.kill, deadline=deadline, host=stop)
        self.ffmpeg: FfmpegRunner | None = None
        self.media: kinds.TaskMedia | None = None
        self.scratch: Scratch | None = None
        self.heartbeat: Heartbeat | None = None
        self.job: Job | None = None
        self.graph: build.Graph | None = None
        self.retries = 0
        self.queue = "encode"
        self.started = time.monotonic()
        self.uploaded: list[storage.S3Location] = []
        self.writer = storage.Writer(self.job_id, self.attempt, f"{worker_id}/{self.task_id}")

    # --- the run --------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            item = faults.retry(
                lambda: lifecycle.claim_task(
                    self.job_id, self.attempt, self.task_id, self.worker_id, self.lease.seconds
                ),
                until=time.monotonic() + self.lease.seconds,
                what=f"claiming task {self.task_id}",
                extra=self.extra,
            )
        except NotYet:
            return Outcome(
                self.job_id, Result.HAND_BACK, "job still planning", NOT_YET_DELAY_SECONDS
            )
        except Exception as exc:  # noqa: BLE001 - the task still waits with its message: keep it
            log.warning("could not claim: %s", faults.describe(exc), extra=self.extra)
            return Outcome(self.job_id, Result.HAND_BACK, faults.describe(exc), delay=10)
        if item is None:
            self._maybe_release_assemble()
            return Outcome(self.job_id, Result.SKIPPED, f"task {self.task_id}: nothing to do")
        self.retries, self.queue = int(item.retries or 0), item.queue or "encode"
        job = lifecycle.current(self.job_id)
        if job is None or job.plan is None:
            return Outcome(self.job_id, Result.SKIPPED, "the job or its plan is gone")
        self.job = job
        self.graph = build.Graph.of(job, threads=graph_settings().encode_threads)
        return self._execute()

    def _execute(self) -> Outcome:
        assert self.job is not None
        log.info("task %s claimed by %s", self.task_id, self.worker_id, extra=self.extra)
        heartbeat = Heartbeat(
            lease_seconds=self.lease.seconds,
            renew=self._renew,
            on_lost=self._lost,
            on_lapse=lambda: self.stops.set(StopReason.LEASE_LAPSED),
            on_beat=self.stops.watch,
            name=f"heartbeat-{self.job_id}-{self.task_id}",
            extra=self.extra,
        )
        scratch = Scratch(
            Path(runtime().scratch_dir), f"{self.job.guid}-{self.attempt}-{self.task_id}"
        )
        self.started = time.monotonic()
        with scratch, heartbeat:
            self.scratch, self.heartbeat = scratch, heartbeat
            self.ffmpeg = FfmpegRunner(self.stops, self.progress, scratch, self.deadline)
            try:
                assert self.graph is not None
                self.media = kinds.TaskMedia(
                    self.graph, scratch, self.ffmpeg,
                    fetch=self._get, store=self._put, names=self._names,
                )  # fmt: skip
                spec = self.graph.plan.task(self.task_id)
                if spec.kind is Kind.ASSEMBLE:
                    return self._assemble()
                return self._finish(self.media.work(spec), self._took())
            except Stop as stop:
                return self._stopped(stop.reason)
            except (MediaFailed, MediaError) as exc:
                return self._failed(str(exc), getattr(exc, "log_tail", ""))
            except storage.OutsideBoundary as exc:
                return self._failed(f"{exc}: outputs may only be written under the job's dest")
            except Exception as exc:  # noqa: BLE001 - classified: permanent, transient or a bug
                return self._broke(exc)
            finally:
                self.kill()

    # --- the assemble: the job's last steps -------------------------------------------

    def _assemble(self) -> Outcome:
        """Join, package, publish into dest, complete the job; then the task is done."""
        assert self.graph is not None and self.scratch is not None and self.ffmpeg is not None
        assert self.job is not None and self.media is not None
        graph = self.graph
        publish = self.scratch.out
        self.media.assemble(publish)
        self._job_step(Status.ENCODING, Status.UPLOADING, {"progress": 99})
        outputs = self._publish(publish)
        total = len(graph.plan.tasks)
        phases = dict(
            self.job.phases.as_dict()
            if hasattr(self.job.phases, "as_dict")
            else self.job.phases or {}
        )
        phases[Status.COMPLETED.value] = rfc3339(utcnow())
        # Every other task has finished (the fan-in released this one): the job's CPU
        # time read at the claim is final but for this task's own.
        cpu = float(self.job.cpu_seconds or 0) + self._cpu()
        self._job_step(
            Status.UPLOADING,
            Status.COMPLETED,
            {"outputs": outputs, "progress": 100, "tasks_done": total, "phases": phases,
             "cpu_seconds": round(cpu, 3)},
        )  # fmt: skip
        self._try(
            lambda: lifecycle.end_task(
                self.lease, TaskStatus.DONE, seconds=self._took(), cpu_seconds=self._cpu()
            )
        )
        self._remove_workspace()
        log.info("job completed with %d outputs", len(outputs), extra=self.extra)
        return Outcome(self.job_id, Result.COMPLETED)

    def _publish(self, folder: Path) -> list[dict[str, Any]]:
        """Every file under dest (stamped with this attempt), each key checked before any byte."""
        assert self.job is not None
        dest = storage.from_uri(self.job.dest)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            raise MediaFailed("the assemble made no output files")
        pairs = [
            (p, storage.S3Location(dest.bucket, dest.key + p.relative_to(folder).as_posix()))
            for p in files
        ]
        for _, location in pairs:
            storage.check_output(location)
        for path, location in pairs:
            self.stops.check()
            self.uploaded.append(location)
            self._transfer(
                f"uploading {location.uri}",
                lambda p=path, loc=location: storage.upload(p, loc, self.writer, self.stops.wanted),
            )
        return record_versions(build.describe_outputs(pairs), self.writer, self._transfer)

    # --- fan-in ----------------------------------------------------------------------

    def _finish(self, outputs: list[str], seconds: float) -> Outcome:
        assert self.graph is not None
        share = self.graph.share(self.task_id)
        try:
            done, total = self._retry(
                "recording the task done",
                lambda: lifecycle.finish_task(self.lease, outputs, share, seconds, self._cpu()),
            )
        except Lost:
            self._lost()
            return self._stopped(self.stops.reason or StopReason.SUPERSEDED)
        log.info("task %s done (%d of %d)", self.task_id, done, total, extra=self.extra)
        if done >= total - 1:
            self._release_assemble()
        return Outcome(self.job_id, Result.COMPLETED, f"task {self.task_id} done")

    def _release_assemble(self) -> None:
        """Exactly one finisher moves the assemble to queued, and sends its message."""
        if lifecycle.release_assemble(self.job_id, self.attempt):
            self._send("assemble")
            log.info("fan-in complete: assemble queued", extra=self.extra)

    def _maybe_release_assemble(self) -> None:
        """A finished task's message again (its host died after the fan-in write): finish it."""
        item = lifecycle.task(self.job_id, self.attempt, self.task_id)
        if item is None or item.status != TaskStatus.DONE.value or self.task_id == "assemble":
            return
        job = lifecycle.current(self.job_id)
        if job is None or int(job.attempt) != self.attempt or job.status != Status.ENCODING.value:
            return
        if int(job.tasks_done or 0) < int(job.tasks_total or 0) - 1:
            return
        if not lifecycle.release_assemble(self.job_id, self.attempt):
            assemble = lifecycle.task(self.job_id, self.attempt, "assemble")
            if assemble is None or assemble.status != TaskStatus.QUEUED.value:
                return  # running or done: nothing was lost
        self._send("assemble")  # a duplicate message is harmless: the claim is conditional

    def _send(self, task_id: str, delay: int = 0) -> None:
        message = messages.TaskMessage(job_id=self.job_id, attempt=self.attempt, task=task_id)
        self._retry(f"sending {task_id}", lambda: queues.send(self.queue, message, delay))

    # --- lease, stops and failures ------------------------------------------------

    def _renew(self) -> None:
        lifecycle.renew_task(self.lease, {"progress": round(self.progress.percent, 1)})

    def _lost(self) -> None:
        """A task write failed its condition: the job ended or moved on, or the task was taken."""
        job = lifecycle.current(self.job_id)
        if job is None or int(job.attempt) != self.attempt:
            self.stops.set(StopReason.SUPERSEDED)
        elif job.status == Status.CANCELLED.value:
            self.stops.set(StopReason.CANCELLED)
        else:
            self.stops.set(StopReason.SUPERSEDED)

    def kill(self) -> None:
        if self.ffmpeg is not None:
            self.ffmpeg.kill()

    def _stopped(self, reason: StopReason) -> Outcome:
        log.info("stopped: %s", reason.value, extra=self.extra)
        self._remove_uploads()
        if reason is StopReason.OVER_BUDGET:
            # Run again it would stop at the same point: a bounded number of tries (a slow
            # host may have been the cause), then the job fails saying so, never a loop.
            retries = self.retries + 1
            if retries > graph_settings().task_retries:
                return self._failed(
                    f"ran out of the invocation's time {retries} times; make chunks shorter "
                    "(OE_CHUNK_SECONDS) or the preset lighter, or send the job to droplets"
                )
            if self._try(lambda: lifecycle.requeue_task(self.lease, retries=retries)) is None:
                return Outcome(self.job_id, Result.HAND_BACK, reason.value, delay=10)
            return Outcome(self.job_id, Result.RELEASED, reason.value)
        if reason in (StopReason.HOST_STOPPING, StopReason.UNRECORDED):
            # Give the task back as it was: the message stays and comes back (released).
            if self._try(lambda: lifecycle.requeue_task(self.lease)) is None:
                return Outcome(self.job_id, Result.HAND_BACK, reason.value, delay=10)
            return Outcome(self.job_id, Result.RELEASED, reason.value)
        if reason is StopReason.LEASE_LAPSED:
            return Outcome(self.job_id, Result.SKIPPED, reason.value)
        self._try(lambda: lifecycle.end_task(self.lease, TaskStatus.CANCELLED))
        job = lifecycle.current(self.job_id)
        if job is not None and (
            int(job.attempt) != self.attempt
            or job.status in (Status.CANCELLED.value, Status.ERROR.value)
        ):
            self._remove_workspace()  # the attempt is over: nobody needs its intermediates
        if reason is StopReason.CANCELLED:
            return Outcome(self.job_id, Result.CANCELLED, "the job was cancelled")
        return Outcome(self.job_id, Result.SKIPPED, reason.value)

    def _failed(self, message: str, log_tail: str = "") -> Outcome:
        if self.scratch is not None:
            message, log_tail = self.scratch.redact(message), self.scratch.redact(log_tail)
        message = f"task {self.task_id}: {message}"
        self._remove_uploads()
        self._try(lambda: lifecycle.end_task(self.lease, TaskStatus.FAILED, message, log_tail))
        failed = self._try(
            lambda: lifecycle.fail_graph(self.job_id, self.attempt, message, log_tail)
        )
        if failed is None:
            return Outcome(self.job_id, Result.HAND_BACK, "could not record the error", delay=10)
        self._remove_workspace()
        log.info("error: %s", message, extra=self.extra)
        return Outcome(self.job_id, Result.ERROR, message)

    def _broke(self, exc: BaseException) -> Outcome:
        """Neither media nor a stop: permanent storage errors fail the job; the rest retry."""
        fault = faults.classify(exc)
        reason = faults.describe(exc)
        if self.scratch is not None:
            reason = self.scratch.redact(reason)
        if fault is faults.Fault.PERMANENT and not faults.is_backend_error(exc):
            log.exception("unexpected failure", extra=self.extra)
        else:
            log.warning("failed: %s", reason, extra=self.extra)
        if fault is faults.Fault.PERMANENT and faults.is_backend_error(exc):
            return self._failed(f"storage refused the task: {reason}")
        retries = self.retries + 1
        if retries > graph_settings().task_retries:
            return self._failed(f"gave up after {retries - 1} retries; last failure: {reason}")
        self._remove_uploads()
        if self._try(lambda: lifecycle.requeue_task(self.lease, retries=retries)) is None:
            return Outcome(self.job_id, Result.HAND_BACK, "could not schedule a retry", delay=10)
        return Outcome(
            self.job_id, Result.RETRY, reason, delay=min(900, 5 * 2**retries + random.randint(0, 5))
        )

    # --- small helpers ------------------------------------------------------------------

    def _job_step(self, old: Status, new: Status, fields: dict[str, Any]) -> None:
        try:
            self._retry(
                f"recording {new.value}",
                lambda: lifecycle.graph_advance(self.job_id, self.attempt, old, new, fields),
            )
        except Lost:
            job = lifecycle.current(self.job_id)
            if job is not None and int(job.attempt) == self.attempt and job.status == new.value:
                return  # a retried assemble: this step was recorded by the run before it
            self._lost()
            raise Stop(self.stops.reason or StopReason.SUPERSEDED) from None

    def _took(self) -> float:
        return time.monotonic() - self.started

    def _cpu(self) -> float:
        return self.ffmpeg.cpu_seconds if self.ffmpeg is not None else 0.0

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        until = self.heartbeat.retry_until() if self.heartbeat else time.monotonic() + 10
        return faults.retry(call, until=until, what=what, extra=self.extra)

    def _try(self, write: Callable[[], Any]) -> bool | None:
        """A closing write: True if recorded, False if things moved on, None if unrecorded."""
        try:
            faults.retry(
                write,
                until=time.monotonic() + self.lease.seconds,
                what="a closing write",
                extra=self.extra,
            )
            return True
        except Lost:
            return False
        except Exception as exc:  # noqa: BLE001 - reported to the caller as unrecorded
            log.warning("could not record: %s", faults.describe(exc), extra=self.extra)
            return None

    def _transfer(self, what: str, call: Callable[[], T]) -> T:
        try:
            return faults.retry(
                call, until=time.monotonic() + self.lease.seconds, what=what, extra=self.extra
            )
        except (Stopped, storage.Stopped):
            self.stops.watch()
            self.stops.check()
            raise

    def _names(self, prefix: str) -> list[str]:
        return self._transfer(f"listing {prefix}", lambda: self.workspace.names(prefix))

    def _get(self, name: str, path: Path) -> Path:
        return self._transfer(
            f"reading {name}", lambda: self.workspace.get(name, path, self.stops.wanted)
        )

    def _put(self, path: Path, name: str) -> str:
        self._transfer(f"writing {name}", lambda: self.workspace.put(path, name, self.stops.wanted))
        return name

    def _remove_uploads(self) -> None:
        for location in self.uploaded:
            try:
                storage.remove_written_by(location, self.writer)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the outcome
                log.warning(
                    "could not remove %s: %s", location.uri, faults.describe(exc), extra=self.extra
                )
        self.uploaded.clear()

    def _remove_workspace(self) -> None:
        try:
            self.workspace.remove()
        except Exception as exc:  # noqa: BLE001 - the lifecycle rule is the backstop
            log.warning(
                "could not remove intermediates: %s", faults.describe(exc), extra=self.extra
            )
