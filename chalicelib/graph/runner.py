"""One task of a job's graph on this host: claim → its steps → done (fan-in), or an outcome.

A `Run` (chalicelib.graph.run) with a task's lease: the heartbeat's renewal checks the
job too, so a cancel, another task's failure or a restart stops the task within one beat.
`TaskMedia` (chalicelib.graph.kinds) does the media of each kind:

- encode: one rendition of one chunk, or all of them from one decode, from its piece;
- audio: the job's audio, once, or one piece of a long track (chalicelib.graph.audio);
- thumbnails: one chunk's pictures (and the poster if it falls there);
- assemble: join the chunks (stream copy), add the audio, package, tile the sprite,
  publish into dest, complete the job. Only the fan-in releases it, once per attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.config import graph_settings
from chalicelib.graph import build, kinds, measures, packaging, source_read
from chalicelib.graph.plan import Kind
from chalicelib.graph.run import Outcome, Result, Run
from chalicelib.graph.run_record import Stop, StopReason
from chalicelib.graph.workspace import Workspace
from chalicelib.jobs import lifecycle, task_lifecycle, tries
from chalicelib.jobs.lifecycle import Lost, Status
from chalicelib.jobs.task_lifecycle import NotYet, TaskLease, TaskStatus
from chalicelib.media.argv import Loopback
from chalicelib.store import faults, messages, queues, storage
from chalicelib.store.models import Job, rfc3339, utcnow

log = logging.getLogger("openencoder.graph")
T = TypeVar("T")
NOT_YET_DELAY_SECONDS = 3


class TaskRun(Run):
    """One task of one attempt of one job on this host."""

    noun = "task"

    def __init__(
        self,
        message: messages.TaskMessage,
        *,
        worker_id: str,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        extra = {"job_id": message.job_id, "attempt": message.attempt, "task": message.task}
        super().__init__(message.job_id, message.attempt, worker_id=worker_id,
                         deadline=deadline, stop=stop, extra=extra)  # fmt: skip
        self.message = message
        self.task_id = message.task
        self.lease = TaskLease(self.job_id, self.attempt, self.task_id, worker_id,
                               self.lease_seconds)  # fmt: skip
        self.workspace = Workspace(self.job_id, self.attempt)
        self.media: kinds.TaskMedia | None = None
        self.job: Job | None = None
        self.graph: build.Graph | None = None
        self.queue = "encode"
        self.uploaded: list[storage.S3Location] = []
        self.writer = storage.Writer(self.job_id, self.attempt, f"{worker_id}/{self.task_id}")

    @property
    def retry_budget(self) -> int:  # type: ignore[override]
        return graph_settings().task_retries

    # --- the run --------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            item = faults.retry(
                lambda: task_lifecycle.claim_task(
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
        self.tries = tries.of(item)
        job = lifecycle.current(self.job_id)
        if job is None or job.plan is None:
            return Outcome(self.job_id, Result.SKIPPED, "the job or its plan is gone")
        self.job = job
        self.graph = build.Graph.of(job, threads=graph_settings().encode_threads)
        log.info("task %s claimed by %s", self.task_id, self.worker_id, extra=self.extra)
        return self.execute()

    def scratch_name(self) -> str:
        assert self.job is not None
        return f"{self.job.guid}-{self.attempt}-{self.task_id}"

    def steps(self) -> Outcome:
        assert self.graph is not None and self.scratch is not None and self.ffmpeg is not None
        self.media = kinds.TaskMedia(
            self.graph, self.scratch, self.ffmpeg,
            fetch=self._get, store=self._put, names=self._names, source=self._source(),
        )  # fmt: skip
        spec = self.graph.plan.task(self.task_id)
        if spec.kind is Kind.ASSEMBLE:
            return self._assemble()
        if spec.kind is Kind.PACKAGE:
            assert self.job is not None
            dest = storage.from_uri(self.job.dest)
            return self._finish(packaging.package(self.media, spec, dest))
        return self._finish(self.media.work(spec))

    # --- the assemble: the job's last steps -------------------------------------------

    def _assemble(self) -> Outcome:
        """Join, package, publish into dest, complete the job; then the task is done."""
        assert self.graph is not None and self.scratch is not None and self.ffmpeg is not None
        assert self.job is not None and self.media is not None
        graph = self.graph
        publish = self.scratch.out
        packaged = None
        if packaging.package_ids(graph.plan):  # the renditions are packaged: copy them
            packaged = packaging.assemble(self.media, publish, self.workspace)
        else:
            self.media.assemble(publish)
        self._job_step(Status.ENCODING, Status.UPLOADING, {"progress": 99})
        outputs = self._publish(publish, packaged)
        total = len(graph.plan.tasks)
        phases = dict(
            self.job.phases.as_dict()
            if hasattr(self.job.phases, "as_dict")
            else self.job.phases or {}
        )
        phases[Status.COMPLETED.value] = rfc3339(utcnow())
        # Every other task has finished (the fan-in released this one): the job's CPU
        # time read at the claim is final but for this task's own.
        cpu = float(self.job.cpu_seconds or 0) + self.cpu()
        # ... and so are its cost sums.
        usage = self.usage()
        gb_seconds = float(self.job.gb_seconds or 0) + usage.gb_seconds
        requests = int(self.job.requests or 0) + 1
        self._job_step(
            Status.UPLOADING,
            Status.COMPLETED,
            {"outputs": outputs, "progress": 100, "tasks_done": total, "phases": phases,
             "cpu_seconds": round(cpu, 3), "gb_seconds": round(gb_seconds, 3),
             "requests": requests},
        )  # fmt: skip
        self.closing(
            "recording the assemble done",
            lambda: task_lifecycle.end_task(
                self.lease, TaskStatus.DONE, seconds=usage.seconds, cpu_seconds=self.cpu(),
                memory_mb=usage.memory_mb,
            ),
        )  # fmt: skip
        self._remove_workspace()
        log.info("job completed with %d outputs", len(outputs), extra=self.extra)
        return Outcome(self.job_id, Result.COMPLETED)

    def _publish(
        self, folder: Path, packaged: packaging.Packaged | None = None
    ) -> list[dict[str, Any]]:
        assert self.job is not None
        qualities = self.media.qualities if self.media is not None else {}
        return packaging.publish(
            folder, self.job.dest, packaged, qualities,
            writer=self.writer, stops=self.stops, transfer=self.transfer, uploaded=self.uploaded,
        )  # fmt: skip

    # --- fan-in ----------------------------------------------------------------------

    def _finish(self, outputs: list[str]) -> Outcome:
        assert self.graph is not None
        share = self.graph.share(self.task_id)
        usage = self.usage()
        try:
            done, total = self._while_leased(
                "recording the task done",
                lambda: task_lifecycle.finish_task(
                    self.lease, outputs, share, usage.seconds, self.cpu(), usage.memory_mb
                ),
            )
        except Lost:
            self.lost()
            return self.stopped(self.stops.reason or StopReason.SUPERSEDED)
        log.info("task %s done (%d of %d)", self.task_id, done, total, extra=self.extra)
        self._release_measures()
        packages = packaging.package_ids(self.graph.plan)
        if done >= total - 1:
            self._release_assemble()
        elif packages and done >= total - 1 - len(packages):
            self._release_packages(packages)
        return Outcome(self.job_id, Result.COMPLETED, f"task {self.task_id} done")

    def _release_assemble(self) -> None:
        """Exactly one finisher moves the assemble to queued, and sends its message."""
        if task_lifecycle.release_assemble(self.job_id, self.attempt, by=self.task_id):
            self._send("assemble")
            log.info("fan-in complete: assemble queued", extra=self.extra)

    def _release_packages(self, packages: tuple[str, ...], again: bool = False) -> None:
        packaging.release(self.job_id, self.attempt, self.task_id, packages, again=again,
                          retry=self._while_leased, send=self._send)  # fmt: skip

    def _release_measures(self, again: bool = False) -> None:
        """A chunk's encode done: its measurements may start (each released once).

        `again` (the encode's message delivered once more): a measurement released but
        perhaps never sent is sent again; a duplicate message is harmless.
        """
        assert self.graph is not None
        if not measures.metrics(self.graph.plan):
            return
        for spec in measures.waiting_on(self.graph.plan, self.task_id):
            released = self._while_leased(
                f"releasing {spec.id}",
                lambda s=spec: task_lifecycle.release(self.job_id, self.attempt, s.id),
            )
            if not released and again:
                item = task_lifecycle.task(self.job_id, self.attempt, spec.id)
                released = item is not None and item.status == TaskStatus.QUEUED.value
            if released:
                self._send(spec.id)

    def _maybe_release_assemble(self) -> None:
        """A finished task's message again (its host died after the fan-in write): finish it."""
        item = task_lifecycle.task(self.job_id, self.attempt, self.task_id)
        if item is None or item.status != TaskStatus.DONE.value or self.task_id == "assemble":
            return
        job = lifecycle.current(self.job_id)
        if job is None or int(job.attempt) != self.attempt or job.status != Status.ENCODING.value:
            return
        if self.task_id.startswith("encode-") and build.plain(job.plan).get("details", {}).get(
            "quality"
        ):
            self.graph = build.Graph.of(job)
            self._release_measures(again=True)  # its host may have died before sending them
        done, total = int(job.tasks_done or 0), int(job.tasks_total or 0)
        packages = packaging.package_ids(build.Graph.of(job).plan) if total > done + 1 else ()
        if packages and total - 1 - len(packages) <= done < total - 1:
            if not self.task_id.startswith("package-"):
                self._release_packages(packages, again=True)
            return
        if done < total - 1:
            return
        if not task_lifecycle.release_assemble(self.job_id, self.attempt, by=self.task_id):
            assemble = task_lifecycle.task(self.job_id, self.attempt, "assemble")
            if assemble is None or assemble.status != TaskStatus.QUEUED.value:
                return  # running or done: nothing was lost
            if assemble.released_by not in (None, self.task_id):
                return  # another finisher released it: its own message covers a lost send
        self._send("assemble")  # a duplicate message is harmless: the claim is conditional

    def _send(self, task_id: str, delay: int = 0) -> None:
        message = messages.TaskMessage(job_id=self.job_id, attempt=self.attempt, task=task_id)
        self._while_leased(f"sending {task_id}", lambda: queues.send(self.queue, message, delay))

    # --- lease, stops and failures ------------------------------------------------

    def renew(self) -> None:
        task_lifecycle.renew_task(self.lease, {"progress": round(self.progress.percent, 1)})

    def lost(self) -> None:
        """A task write failed its condition: the job ended or moved on, or the task was taken."""
        job = lifecycle.current(self.job_id)
        if job is None or int(job.attempt) != self.attempt:
            self.stops.set(StopReason.SUPERSEDED)
        elif job.status == Status.CANCELLED.value:
            self.stops.set(StopReason.CANCELLED)
        else:
            self.stops.set(StopReason.SUPERSEDED)

    def stopped(self, reason: StopReason) -> Outcome:
        log.info("stopped: %s", reason.value, extra=self.extra)
        self._remove_uploads()
        if reason is StopReason.OVER_BUDGET:
            # Run again it would stop at the same point: a bounded number of tries (a slow
            # host may have been the cause), then the job fails saying so, never a loop.
            retries = self.retries + 1
            if retries > self.retry_budget:
                return self.failed(
                    f"ran out of the invocation's time {retries} times; make chunks shorter "
                    "(OE_CHUNK_SECONDS) or the preset lighter, or send the job to droplets",
                    ended=reason.value,
                )
            requeue = lambda: task_lifecycle.requeue_task(  # noqa: E731
                self.lease, retries=retries, ended=reason.value
            )
            if self.closing("requeueing the task", requeue) is None:
                return Outcome(self.job_id, Result.HAND_BACK, reason.value, delay=10)
            return Outcome(self.job_id, Result.RELEASED, reason.value)
        if reason in (StopReason.HOST_STOPPING, StopReason.UNRECORDED):
            # Give the task back as it was: the message stays and comes back (released).
            requeue = lambda: task_lifecycle.requeue_task(self.lease)  # noqa: E731
            if self.closing("giving the task back", requeue) is None:
                return Outcome(self.job_id, Result.HAND_BACK, reason.value, delay=10)
            return Outcome(self.job_id, Result.RELEASED, reason.value)
        if reason is StopReason.LEASE_LAPSED:
            return Outcome(self.job_id, Result.SKIPPED, reason.value)
        self.closing(
            "ending the task", lambda: task_lifecycle.end_task(self.lease, TaskStatus.CANCELLED)
        )
        job = lifecycle.current(self.job_id)
        if job is not None and (
            int(job.attempt) != self.attempt
            or job.status in (Status.CANCELLED.value, Status.ERROR.value)
        ):
            self._remove_workspace()  # the attempt is over: nobody needs its intermediates
        if reason is StopReason.CANCELLED:
            return Outcome(self.job_id, Result.CANCELLED, "the job was cancelled")
        return Outcome(self.job_id, Result.SKIPPED, reason.value)

    def failed(self, message: str, log_tail: str = "", ended: str = "") -> Outcome:
        if self.task_id.startswith("quality-") and (done := self._measure_failed(message)):
            return done
        message = f"task {self.task_id}: {self.redact(message)}"
        log_tail = self.redact(log_tail)
        self._remove_uploads()
        self.closing(
            "recording the task's error",
            lambda: task_lifecycle.end_task(
                self.lease, TaskStatus.FAILED, message, log_tail, ended=ended or message
            ),
        )
        failed = self.closing(
            "recording the job's error",
            lambda: lifecycle.fail_graph(self.job_id, self.attempt, message, log_tail),
        )
        if failed is None:
            return Outcome(self.job_id, Result.HAND_BACK, "could not record the error", delay=10)
        self._remove_workspace()
        log.info("error: %s", message, extra=self.extra)
        return Outcome(self.job_id, Result.ERROR, message)

    def _measure_failed(self, message: str) -> Outcome | None:
        """A measurement past its tries (ffmpeg killed each time, say) fails only its
        rendition's quality: the encode's outputs stand and the job completes."""
        if self.media is None or self.graph is None:
            return None
        try:
            spec = self.graph.plan.task(self.task_id)
            stored = self.media.measure_failed(spec, self.redact(message))
        except Exception as exc:  # noqa: BLE001 - then it fails as any task does
            log.warning("could not record the failed measurement: %s", exc, extra=self.extra)
            return None
        return self._finish(stored)

    def retry(self, retries: int, ended: str, delay: int) -> Outcome:
        """Back to queued for another try (the caller's queue re-sends the message)."""
        self._remove_uploads()
        requeue = lambda: task_lifecycle.requeue_task(  # noqa: E731
            self.lease, retries=retries, ended=ended
        )
        if self.closing("scheduling a retry", requeue) is None:
            return Outcome(self.job_id, Result.HAND_BACK, "could not schedule a retry", delay=10)
        return Outcome(self.job_id, Result.RETRY, ended, delay=delay)

    # --- small helpers ------------------------------------------------------------------

    def _job_step(self, old: Status, new: Status, fields: dict[str, Any]) -> None:
        try:
            self._while_leased(
                f"recording {new.value}",
                lambda: lifecycle.graph_advance(self.job_id, self.attempt, old, new, fields),
            )
        except Lost:
            job = lifecycle.current(self.job_id)
            if job is not None and int(job.attempt) == self.attempt and job.status == new.value:
                return  # a retried assemble: this step was recorded by the run before it
            self.lost()
            raise Stop(self.stops.reason or StopReason.SUPERSEDED) from None

    def _while_leased(self, what: str, call: Callable[[], T]) -> T:
        until = self.heartbeat.retry_until() if self.heartbeat else time.monotonic() + 10
        return faults.retry(call, until=until, what=what, extra=self.extra)

    def _source(self) -> Callable[[], AbstractContextManager[Loopback]] | None:
        """The job's source served by range, if the plan reads it so (else its pieces)."""
        assert self.graph is not None and self.job is not None
        if source_read.way(self.graph.plan) is not source_read.Way.RANGED:
            return None
        located = source_read.planned(self.job.source, self.graph.plan)
        return lambda: source_read.served(located)

    def _names(self, prefix: str) -> list[str]:
        return self.transfer(f"listing {prefix}", lambda: self.workspace.names(prefix))

    def _get(self, name: str, path: Path) -> Path:
        return self.transfer(
            f"reading {name}", lambda: self.workspace.get(name, path, self.stops.wanted)
        )

    def _put(self, path: Path, name: str) -> str:
        self.transfer(f"writing {name}", lambda: self.workspace.put(path, name, self.stops.wanted))
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
