"""A job's first task: claim → download → probe → plan → fan out, or the plan's one task
(encode → upload → complete) when the plan is `single`.

A `Run` (chalicelib.graph.run) like every task, on the same hosts (the encode Lambda, a
droplet worker, the local stack), with a lease on the job item itself: every status change
is conditional on (status, attempt, lease owner), so a duplicate delivery, an older attempt
or a worker that lost its lease changes nothing. A lost condition stops the run quietly
(cancelled or superseded); transient failures and ffmpeg killed by a signal are tried
again within the budget; the message is deleted only once the outcome is recorded on the
job. Outputs are stamped with the attempt that wrote them, and a run that does not complete
removes exactly the objects it wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.config import graph_settings
from chalicelib.errors import InvalidInput
from chalicelib.graph import build, ladder_choice, measures, source_read
from chalicelib.graph.plan import Mode, Plan, TaskSpec
from chalicelib.graph.run import Outcome, Result, Run
from chalicelib.graph.run_record import RunRecord, StopReason
from chalicelib.jobs import events, lifecycle, task_lifecycle, tries
from chalicelib.jobs.lifecycle import Lease, Status
from chalicelib.jobs.outputs import NoOutputs, Outputs, RefusedByStorage
from chalicelib.media import quality, sandbox
from chalicelib.media.ffmpeg_process import Progress
from chalicelib.media.probe import (
    ALLOWED_DEMUXERS,
    MediaError,
    MediaInfo,
    probe,
)
from chalicelib.presets.spec import PresetSpec, parse_preset_data
from chalicelib.store import faults, queues, storage
from chalicelib.store.models import Job

log = logging.getLogger("openencoder.pipeline")
T = TypeVar("T")


class EncodeFailed(Exception):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class JobRun(Run):
    """A job's first task on this host: claim, download, probe, plan; then fan out, or
    (a plan of one task) encode, publish and complete. `RunRecord` makes its job writes."""

    @property
    def retry_budget(self) -> int:  # type: ignore[override]
        return graph_settings().task_retries  # one budget for every task, this one too

    def __init__(
        self,
        job_id: int,
        attempt: int,
        *,
        worker_id: str,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        extra = {"job_id": job_id, "attempt": attempt}
        super().__init__(job_id, attempt, worker_id=worker_id, deadline=deadline, stop=stop,
                         extra=extra)  # fmt: skip
        self.lease = Lease(job_id, attempt, worker_id, self.lease_seconds)
        writer = storage.Writer(job_id, attempt, worker_id)
        self.outputs = Outputs(writer, retry_seconds=self.lease.seconds, extra=self.extra)
        self.job: Job | None = None
        self.record = RunRecord(self.lease, self.stops, self.extra)

    # --- the run --------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            job = faults.retry(
                lambda: lifecycle.claim(
                    self.job_id, self.attempt, self.worker_id, self.lease.seconds
                ),
                until=time.monotonic() + self.lease.seconds,
                what=f"claiming job {self.job_id}",
                extra=self.extra,
            )
        except Exception as exc:  # noqa: BLE001 - the job still waits with its message: keep it
            log.warning("could not claim: %s", faults.describe(exc), extra=self.extra)
            delay = int(5 + faults.backoff(3, cap=25))
            return Outcome(self.job_id, Result.HAND_BACK, faults.describe(exc), delay=delay)
        if job is None:
            return Outcome(
                self.job_id, Result.SKIPPED, "not claimable: duplicate, old attempt or live lease"
            )
        return self.execute(job)

    def claim(self) -> bool:
        """Claim without running (tests drive `execute` themselves)."""
        job = lifecycle.claim(self.job_id, self.attempt, self.worker_id, self.lease.seconds)
        self.job = job
        return job is not None

    def execute(self, job: Job | None = None) -> Outcome:
        self.job = job or self.job
        assert self.job is not None
        self.record.claimed(self.job)
        self.retries = int(self.job.retries or 0)
        self.tries = tries.of(self.job)
        log.info("claimed by %s", self.worker_id, extra=self.extra)
        return super().execute()

    def scratch_name(self) -> str:
        assert self.job is not None
        return f"{self.job.guid}-{self.attempt}"

    def media_failures(self) -> tuple[type[Exception], ...]:
        return (EncodeFailed, storage.SourceMissing, RefusedByStorage, NoOutputs)

    def lost(self) -> None:
        self.record.explain_lost()

    def steps(self) -> Outcome:
        """download → probe → plan; then fan the graph out, or run the plan's one task."""
        assert self.job is not None
        self.record.heartbeat = self.heartbeat
        spec = self._preset()
        info = self._download_and_probe()
        chosen = ladder_choice.choose(  # a per-title ladder's probes and choice, else None
            self.job.preset_snapshot, info, self.source_path, self.scratch.path / "probes",
            self.ffmpeg, build.frame_rate(info.video.fps if info.video else None),
            graph_settings().encode_threads,
        )  # fmt: skip
        plan, _recipe = build.plan_job(self.job, info, chosen)
        way = source_read.record(plan, self.located, info.container, self.took())
        if way is source_read.Way.DOWNLOAD and self.source_path is None:
            self._download()  # probed by range, but read whole (not indexed, or one task)
        if plan.graph:
            return self._fan_out(plan, info)
        if plan.mode is Mode.DROPLET and self.deadline is not None:
            log.info("planned for the droplet pool: %s", plan.reason, extra=self.extra)
            # The job view shows the route and its estimate while the job waits for a droplet.
            fields = {"probe": info.summary(), "plan": plan.record()}
            self.record.close("recording the plan", lambda: self.record.renew(fields))
            self.stops.set(StopReason.OVER_BUDGET)
            self.stops.check()
        self._check_budget(info, spec)
        return self._single(plan, info, spec)

    def _single(self, plan: Plan, info: MediaInfo, spec: PresetSpec) -> Outcome:
        """A plan of one task, here and now: encode → publish → complete."""
        assert self.job is not None and self.scratch is not None and self.ffmpeg is not None
        fields = {"probe": info.summary(), "plan": plan.record(), "tasks_total": 1, "tasks_done": 0}
        self.record.advance(Status.ENCODING, fields)
        self._encode(spec, info)
        measured = self._measure(plan, info)
        self.record.advance(Status.UPLOADING, {"progress": 100})
        outputs = self.outputs.publish(
            self.scratch.out, self.job.dest,
            transfer=self.transfer, should_stop=self.stops.wanted, check=self.stops.check,
        )  # fmt: skip
        quality.attach(outputs, measured)
        self.record.complete({"outputs": outputs, "progress": 100, "tasks_done": 1,
                              "cpu_seconds": round(self.ffmpeg.cpu_seconds, 3),
                              "gb_seconds": self.usage().gb_seconds, "requests": 1})  # fmt: skip
        log.info("completed with %d outputs", len(outputs), extra=self.extra)
        return Outcome(self.job_id, Result.COMPLETED)

    def _measure(self, plan: Plan, info: MediaInfo) -> dict[str, dict[str, Any]]:
        """Quality of the one output against the whole source, if the job asked (one chunk)."""
        metrics = measures.metrics(plan)
        if not metrics:
            return {}
        assert self.job is not None and self.scratch is not None and self.ffmpeg is not None
        name = self.job.preset_snapshot["output"]
        video = info.video
        size = (video.width, video.height) if video and video.width and video.height else None
        # The job's fps and speed stay the encode's: the measurement reports to a progress
        # of its own (the same runner, so a cancel still kills it).
        encode_progress, self.ffmpeg.progress = self.ffmpeg.progress, Progress()
        try:
            result = quality.measure_whole(
                name, self.scratch.out / name, self.source_path, size,
                self.scratch.path / "measure", self.scratch.out, self.ffmpeg, metrics=metrics,
                threads=graph_settings().encode_threads or 1,
            )  # fmt: skip
        finally:
            self.ffmpeg.progress = encode_progress
        return {name: result}

    def _fan_out(self, plan: Plan, info: MediaInfo) -> Outcome:
        """Run as a graph: the source cut into pieces, each stored with its tasks and their
        messages before the next is cut, so the first tasks start while the rest is split.

        The job keeps its lease until every message is out; a host that dies before that
        lets the lease lapse, and the recovered job plans again from the start (its tasks,
        stopped by the job's change of status, are stored and sent again). A task's item is
        stored only with its piece: a message arriving early finds no task and waits.
        """
        assert self.job is not None and self.scratch is not None and self.ffmpeg is not None
        assert self.record.heartbeat is not None
        job, runner = self.job, self.ffmpeg
        fields = {"probe": info.summary(), "plan": plan.record(), "tasks_total": len(plan.tasks),
                  "tasks_done": 0, "progress": 0, "cpu_seconds": 0}  # fmt: skip
        self.record.advance(Status.ENCODING, fields)
        workspace = build.workspace_of(job)
        queue = build.queue_for(plan)
        items = {item.task_id: item for item in build.task_items(job, plan, queue)}

        def ready(tasks: list[TaskSpec]) -> None:
            stored = [items[t.id] for t in tasks]
            self.transfer("storing tasks", lambda: task_lifecycle.plant(stored))
            self.stops.check()
            self.transfer("sending tasks", lambda: build.send(job, tasks, queue))

        fan = build.FanOut(ready)  # stored and sent in batches, not piece by piece
        try:
            # The assemble (and packages) first: the fan-in releases them, however early.
            last = [items[t.id] for t in plan.tasks if t.chunk is None and t.kind in build.RELEASED]
            self.transfer("storing the assemble", lambda: task_lifecycle.plant(last))
            folder = self.scratch.path / "pieces"
            for piece in source_read.pieces(plan, self.source_path or self.located, folder, runner):
                if piece.name:  # read by range, a chunk's task cuts its own: none stored
                    put = lambda p=piece: workspace.put(p.path, p.name, self.stops.wanted)  # noqa: E731
                    self.transfer(f"writing {piece.name}", put)
                    piece.path.unlink()  # a long source's pieces need not all fit in scratch
                fan.add(piece.tasks)
            fan.flush()
        except BaseException:
            # Before any message, nobody reads these pieces. After one, a task may still run
            # them (this run's lease may merely have lapsed, and the job will be recovered):
            # the job's end removes them, and the lifecycle rule is the backstop.
            if not fan.flushed:
                with contextlib.suppress(Exception):
                    workspace.remove()
            raise
        self.record.heartbeat.stop()  # the tasks hold their own leases from here on
        self.record.close(
            "handing the job to its tasks",
            lambda: lifecycle.release(
                self.lease, cpu_seconds=runner.cpu_seconds, gb_seconds=self.usage().gb_seconds
            ),
        )
        log.info("fanned out: %s, %d tasks on the %s queue", plan.reason, len(plan.tasks), queue,
                 extra=self.extra)  # fmt: skip
        return Outcome(self.job_id, Result.FANNED_OUT, f"{len(plan.tasks)} tasks")

    def _preset(self) -> PresetSpec:
        """The job's preset, judged again by today's allow-list before anything runs."""
        assert self.job is not None
        try:
            return parse_preset_data(self.job.preset_snapshot["data"])
        except InvalidInput as exc:
            raise EncodeFailed(
                f"preset {self.job.preset!r} no longer passes validation and was not run: "
                f"{exc.message}; fix the preset, then restart the job"
            ) from None

    # --- the heartbeat's side -----------------------------------------------------------

    def renew(self) -> None:
        fields: dict[str, Any] = {}
        if self.record.phase is Status.ENCODING:
            fields["progress"] = round(self.progress.percent, 2)
            events.job_progress(self.job_id, self.progress.percent)  # at most 1 per 10 s
            if self.progress.fps is not None:
                fields["fps"] = self.progress.fps
            if self.progress.speed is not None:
                fields["speed"] = self.progress.speed
        self.record.renew(fields)

    # --- the steps -------------------------------------------------------------------

    def _download_and_probe(self) -> MediaInfo:
        assert self.job is not None and self.scratch is not None
        source = storage.from_uri(self.job.source)  # probed by range, or downloaded first
        try:
            found = self.transfer("reading the source", lambda: storage.source_facts(source))
        except Exception as exc:
            if message := storage.explain(exc, source, "read the source"):
                raise EncodeFailed(message) from None
            raise
        if found["size"] == 0:
            raise EncodeFailed("source is empty (0 bytes)")
        self.located = source_read.Located(source, found["size"], found["etag"] or None)
        self.source_path: Path | None = None
        # A per-title ladder's probes sample the whole timeline from a local file.
        if not source_read.worth_ranged(found["size"]) or ladder_choice.per_title(
            self.job.preset_snapshot
        ):
            self._download()
        self.record.advance(Status.PROBING, {})
        try:
            path = self.source_path
            info = source_read.probe(self.located, self.scratch.path) if not path else probe(path)
        except MediaError as exc:
            raise MediaError(self.scratch.redact(str(exc))) from None
        self.stops.check()
        return info

    def _download(self) -> None:
        assert self.scratch is not None
        self.source_path = source_read.download_path(self.located, self.scratch)
        download = lambda: storage.download(  # noqa: E731
            self.located.location, self.source_path, self.stops.wanted
        )
        self.transfer("downloading the source", download)
        self.stops.check()

    def _check_budget(self, info: MediaInfo, spec: PresetSpec) -> None:
        if self.deadline is None:
            return
        needed = build.estimate_encode_seconds(info, spec)
        left = self.deadline - time.monotonic()
        if needed > left:
            log.info("needs ~%.0f s, %.0f s left: handing off", needed, left, extra=self.extra)
            self.stops.set(StopReason.OVER_BUDGET)
            self.stops.check()

    def _ffmpeg(self, args: list[str], info: MediaInfo, spec: PresetSpec) -> None:
        """The preset's ffmpeg on the job's source, in scratch/out."""
        assert self.scratch is not None and self.ffmpeg is not None
        source = [*sandbox.INPUT_FENCE, "-format_whitelist", ALLOWED_DEMUXERS,
                  "-i", f"file:{self.source_path}"]  # fmt: skip
        self.ffmpeg([*source, *args], self.scratch.out, info.duration,
                    estimate=build.estimate_encode_seconds(info, spec))  # fmt: skip

    def _encode(self, spec: PresetSpec, info: MediaInfo) -> None:
        assert self.job is not None and self.scratch is not None
        wants_video = (
            any(a in ("-c:v", "-vf", "-codec:v") for a in spec.args) and "-vn" not in spec.args
        )
        if wants_video and info.video is None:
            raise EncodeFailed(
                f"source has no video stream but preset {self.job.preset!r} encodes video; "
                "use an audio preset or a source with video"
            )
        output = self.job.preset_snapshot["output"]
        fence = sandbox.OUTPUT_FENCE
        if spec.two_pass:
            passlog = str(self.scratch.path / "passlog")
            first = [*spec.args, "-pass", "1", "-passlogfile", passlog, "-an", "-f", "null"]
            self._ffmpeg([*first, *fence, os.devnull], info, spec)
            second = [*spec.args, "-pass", "2", "-passlogfile", passlog, *fence, output]
            self._ffmpeg(second, info, spec)
        else:
            self._ffmpeg([*spec.args, *fence, output], info, spec)
        self.progress.percent = 100.0

    # --- endings ------------------------------------------------------------------

    def _hand_back(self, why: str) -> Outcome:
        """The job's state could not be recorded: keep the message until the lease lapses."""
        job = self.record.read()
        if job is not None and int(job.attempt) == self.attempt:
            if job.status == Status.COMPLETED.value:
                return Outcome(self.job_id, Result.COMPLETED, "recorded by an earlier try")
            self.outputs.remove()
        delay = self.lease.seconds + int(faults.backoff(2, cap=10))
        log.warning("handing the message back: %s", why, extra=self.extra)
        return Outcome(self.job_id, Result.HAND_BACK, why, delay=delay)

    def stopped(self, reason: StopReason) -> Outcome:
        log.info("stopped: %s", reason.value, extra=self.extra)
        if reason in (StopReason.LEASE_LAPSED, StopReason.UNRECORDED):
            return self._hand_back(reason.value)
        self.outputs.remove()
        if reason is StopReason.CANCELLED:
            self.record.close("releasing the lease", lambda: lifecycle.release(self.lease))
            return Outcome(self.job_id, Result.CANCELLED, reason.value)
        if reason is StopReason.SUPERSEDED:
            return Outcome(self.job_id, Result.SKIPPED, reason.value)
        assert self.job is not None
        queue = self.job.queue if reason is StopReason.HOST_STOPPING else "long"
        recorded = self.record.close(
            f"returning the job to the {queue} queue",
            lambda: lifecycle.requeue(self.lease, self.record.phase, queue=queue),
        )
        if recorded is None:
            return self._hand_back("could not return the job to its queue")
        if not recorded:
            return Outcome(self.job_id, Result.SKIPPED, "lost the job while handing it off")
        if reason is StopReason.HOST_STOPPING:
            return Outcome(self.job_id, Result.RELEASED, "host stopping; job returned to its queue")
        queues.send_job("long", self.job_id, self.attempt)
        return Outcome(
            self.job_id, Result.HANDED_OFF, "too long for this host: sent to the long queue"
        )

    def failed(self, message: str, log_tail: str = "", ended: str = "") -> Outcome:
        message, log_tail = self.redact(message), self.redact(log_tail)
        self.outputs.remove()
        recorded = self.record.close(
            "recording the error",
            lambda: lifecycle.fail_run(
                self.lease, self.record.phase, message, log_tail, ended=ended or message
            ),
        )
        if recorded is None:
            return self._hand_back("could not record the error")
        if not recorded:
            self.record.explain_lost()
            reason = self.stops.reason or StopReason.SUPERSEDED
            return self.stopped(reason)
        log.info("error: %s", message, extra=self.extra)
        return Outcome(self.job_id, Result.ERROR, message)

    def retry(self, retries: int, ended: str, delay: int) -> Outcome:
        """Back to queued as the same attempt, for another try after `delay`."""
        assert self.job is not None
        self.outputs.remove()
        queue = self.job.queue
        recorded = self.record.close(
            "scheduling a retry",
            lambda: lifecycle.requeue(self.lease, self.record.phase, queue=queue, delay=delay,
                                      retries=retries, ended=ended),
        )  # fmt: skip
        if recorded is None:
            return self._hand_back("could not schedule a retry")
        if not recorded:
            return Outcome(self.job_id, Result.SKIPPED, "lost the job while scheduling a retry")
        return Outcome(self.job_id, Result.RETRY, ended, delay=delay)
