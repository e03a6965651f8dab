"""The encode pipeline: claim → download → probe → encode → upload → complete.

One runner for the three hosts (the encode Lambda, a droplet worker, the local stack).
The job item is the truth and `lifecycle` writes it: every status change is
conditional on (status, attempt, lease owner), so a duplicate delivery, an older
attempt or a worker that lost its lease changes nothing.

Failures are told apart (`faults`): a lost condition stops the run quietly (cancelled or
superseded); a transient failure is retried with back-off within the lease, and if it
persists the run stops and its message goes back to the queue with a delay — the
message is deleted only once the outcome is recorded on the job; a permanent failure
(bad source, missing bucket) ends the job in error at once with a message a person can
act on. Outputs are stamped with the attempt that wrote them, and a run that does not
complete removes exactly the objects it wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.config import runtime
from chalicelib.errors import InvalidInput
from chalicelib.graph import build
from chalicelib.graph.lease import Heartbeat
from chalicelib.graph.plan import Mode, Plan
from chalicelib.graph.run_record import RunRecord, Stop, StopReason, Stops
from chalicelib.jobs import events, lifecycle
from chalicelib.jobs.lifecycle import Lease, Lost, Status
from chalicelib.jobs.outputs import NoOutputs, Outputs, RefusedByStorage
from chalicelib.media import sandbox
from chalicelib.media.ffmpeg_process import FfmpegRunner, Progress
from chalicelib.media.probe import (
    ALLOWED_DEMUXERS,
    MediaError,
    MediaInfo,
    probe,
)
from chalicelib.media.scratch import Scratch
from chalicelib.media.steps import MediaFailed
from chalicelib.presets.spec import PresetSpec, parse_preset_data
from chalicelib.store import faults, messages, queues, storage
from chalicelib.store.models import Job

log = logging.getLogger("openencoder.pipeline")
T = TypeVar("T")
MAX_TRANSIENT_RETRIES = 3


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


class EncodeFailed(Exception):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def lease_seconds() -> int:
    return runtime().lease_seconds


def scratch_root() -> Path:
    return Path(runtime().scratch_dir)


def _output_height(spec: PresetSpec, info: MediaInfo) -> int:
    for arg in spec.args:
        if match := re.search(r"scale=-?\d*:(\d+)", arg):
            return int(match.group(1))
        if match := re.search(r"scale=(\d+):-\d", arg):
            return int(int(match.group(1)) * 9 / 16)
    return info.video.height if info.video and info.video.height else 720


def estimate_encode_seconds(info: MediaInfo, spec: PresetSpec) -> float:
    """Encode time from the source duration, the preset's cost and a measured throughput.

    OE_ENCODE_SPEED is the measured realtime factor of a 720p libx264 encode on
    this host (see bench/encode.py); other sizes scale with the pixel count and
    slower codecs by a factor measured the same way.
    """
    duration = info.duration or 0.0
    pixels = (_output_height(spec, info) / 720) ** 2
    args = " ".join(spec.args)
    codec = 1.0
    for name, factor in (
        ("libvpx-vp9", 4.0),
        ("libx265", 3.0),
        ("libaom-av1", 8.0),
        ("libsvtav1", 2.0),
    ):
        if name in args:
            codec = factor
    passes = 2 if spec.two_pass else 1
    return duration * pixels * codec * passes / runtime().encode_speed


class JobRun:
    """One attempt of one job on this host: claim, the steps, then an outcome.

    Collaborators: the `Heartbeat` keeps the lease (and notices cancel), `Scratch` holds
    the files, `FfmpegRunner` runs ffmpeg, `Stops` carries why to stop.
    """

    def __init__(
        self,
        job_id: int,
        attempt: int,
        *,
        worker_id: str,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.worker_id = worker_id
        self.deadline = deadline  # time.monotonic() by which work must be handed off
        self.lease = Lease(job_id, attempt, worker_id, lease_seconds())
        self.extra = {"job_id": job_id, "attempt": attempt}
        writer = storage.Writer(job_id, attempt, worker_id)
        self.outputs = Outputs(writer, retry_seconds=self.lease.seconds, extra=self.extra)
        self.job: Job | None = None
        self.progress = Progress()
        self.ffmpeg: FfmpegRunner | None = None  # every ffmpeg this run starts
        self.stops = Stops(self.kill, deadline=deadline, host=stop)
        self.record = RunRecord(self.lease, self.stops, self.extra)
        self.scratch: Scratch | None = None

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
        """Everything after a successful claim; scratch space is removed on every path."""
        self.job = job or self.job
        assert self.job is not None
        self.record.claimed(self.job)
        log.info("claimed by %s", self.worker_id, extra=self.extra)
        heartbeat = Heartbeat(
            lease_seconds=self.lease.seconds,
            renew=self._renew,
            on_lost=self.record.explain_lost,
            on_lapse=lambda: self.stops.set(StopReason.LEASE_LAPSED),
            on_beat=self.stops.watch,
            every=runtime().heartbeat_seconds,
            name=f"heartbeat-{self.job_id}",
            extra=self.extra,
        )
        scratch = Scratch(scratch_root(), f"{self.job.guid}-{self.attempt}")
        with scratch, heartbeat:
            self.scratch, self.record.heartbeat = scratch, heartbeat
            self.ffmpeg = FfmpegRunner(self.stops, self.progress, scratch, self.deadline)
            try:
                return self._steps()
            except Stop as stop:
                return self._stopped(stop.reason)
            except (
                EncodeFailed,
                MediaFailed,
                MediaError,
                storage.SourceMissing,
                RefusedByStorage,
                NoOutputs,
            ) as exc:
                return self._failed(str(exc), getattr(exc, "log_tail", ""))
            except storage.OutsideBoundary as exc:
                return self._failed(f"{exc}: outputs may only be written under the job's dest")
            except Exception as exc:  # noqa: BLE001 - classified: permanent, transient or a bug
                return self._broke(exc)
            finally:
                self.kill()

    def _steps(self) -> Outcome:
        assert self.job is not None
        spec = self._preset()
        info = self._download_and_probe()
        plan, _recipe = build.plan_job(self.job, info)
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
        fields = {"probe": info.summary(), "plan": plan.record(), "tasks_total": 1, "tasks_done": 0}
        self.record.advance(Status.ENCODING, fields)
        self._encode(spec, info)
        self.record.advance(Status.UPLOADING, {"progress": 100})
        assert self.scratch is not None and self.ffmpeg is not None
        outputs = self.outputs.publish(
            self.scratch.out, self.job.dest,
            transfer=self._transfer, should_stop=self.stops.wanted, check=self.stops.check,
        )  # fmt: skip
        self.record.complete({"outputs": outputs, "progress": 100, "tasks_done": 1,
                              "cpu_seconds": round(self.ffmpeg.cpu_seconds, 3)})  # fmt: skip
        log.info("completed with %d outputs", len(outputs), extra=self.extra)
        return Outcome(self.job_id, Result.COMPLETED)

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
        sent = False
        try:
            # The assemble first: the fan-in releases it, however early the others finish.
            self._transfer("storing the assemble", lambda: lifecycle.plant([items["assemble"]]))
            folder = self.scratch.path / "pieces"
            for piece in build.pieces(self.source_path, plan, folder, runner):
                put = lambda p=piece: workspace.put(p.path, p.name, self.stops.wanted)  # noqa: E731
                self._transfer(f"writing {piece.name}", put)
                piece.path.unlink()  # a long source's pieces need not all fit in scratch
                ready = [items[t.id] for t in piece.tasks]
                self._transfer("storing tasks", lambda r=ready: lifecycle.plant(r))
                self.stops.check()
                self._transfer("sending tasks", lambda p=piece: build.send(job, p.tasks, queue))
                sent = True
        except BaseException:
            # Before any message, nobody reads these pieces. After one, a task may still run
            # them (this run's lease may merely have lapsed, and the job will be recovered):
            # the job's end removes them, and the lifecycle rule is the backstop.
            if not sent:
                with contextlib.suppress(Exception):
                    workspace.remove()
            raise
        self.record.heartbeat.stop()  # the tasks hold their own leases from here on
        self.record.close(
            "handing the job to its tasks",
            lambda: lifecycle.release(self.lease, cpu_seconds=runner.cpu_seconds),
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

    def _renew(self) -> None:
        fields: dict[str, Any] = {}
        if self.record.phase is Status.ENCODING:
            fields["progress"] = round(self.progress.percent, 2)
            events.job_progress(self.job_id, self.progress.percent)  # at most 1 per 10 s
            if self.progress.fps is not None:
                fields["fps"] = self.progress.fps
            if self.progress.speed is not None:
                fields["speed"] = self.progress.speed
        self.record.renew(fields)

    def kill(self) -> None:
        if self.ffmpeg is not None:
            self.ffmpeg.kill()

    # --- the steps -------------------------------------------------------------------

    def _transfer(self, what: str, call: Callable[[], T]) -> T:
        """An S3 transfer, transient failures retried for up to a lease's length."""
        try:
            return faults.retry(
                call, until=time.monotonic() + self.lease.seconds, what=what, extra=self.extra
            )
        except storage.Stopped:
            self.stops.watch()
            self.stops.check()
            raise

    def _download_and_probe(self) -> MediaInfo:
        assert self.job is not None and self.scratch is not None
        source = storage.from_uri(self.job.source)
        try:
            size = self._transfer("reading the source", lambda: storage.object_size(source))
        except Exception as exc:
            if message := storage.explain(exc, source, "read the source"):
                raise EncodeFailed(message) from None
            raise
        room = self.scratch.free_bytes(runtime().scratch_bytes)
        # Room for the source and about as much again for the outputs.
        if size * 2 > room:
            raise EncodeFailed(
                f"source is {size} bytes but scratch space holds {room} bytes "
                "(source plus outputs); use a smaller source or a host with more storage"
            )
        if size == 0:
            raise EncodeFailed("source is empty (0 bytes)")
        suffix = Path(source.key).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
            suffix = ""  # the name is ours; ffmpeg probes the content, not the name
        self.source_path = self.scratch.path / f"source{suffix}"
        self._transfer(
            "downloading the source",
            lambda: storage.download(source, self.source_path, self.stops.wanted),
        )
        self.stops.check()
        self.record.advance(Status.PROBING, {})
        try:
            info = probe(self.source_path)
        except MediaError as exc:
            raise MediaError(self.scratch.redact(str(exc))) from None
        self.stops.check()
        return info

    def _check_budget(self, info: MediaInfo, spec: PresetSpec) -> None:
        if self.deadline is None:
            return
        needed = estimate_encode_seconds(info, spec)
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
                    estimate=estimate_encode_seconds(info, spec))  # fmt: skip

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

    def _try(self, what: str, write: Callable[[], None]) -> bool | None:
        """A closing write: True if recorded, False if the job moved on, None if unrecorded."""
        try:
            faults.retry(
                write, until=time.monotonic() + self.lease.seconds, what=what, extra=self.extra
            )
            return True
        except Lost:
            return False
        except Exception as exc:  # noqa: BLE001 - unrecorded: the message must stay
            log.warning("%s: %s", what, faults.describe(exc), extra=self.extra)
            return None

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

    def _stopped(self, reason: StopReason) -> Outcome:
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

    def _failed(self, message: str, log_tail: str = "") -> Outcome:
        if self.scratch is not None:
            message, log_tail = self.scratch.redact(message), self.scratch.redact(log_tail)
        self.outputs.remove()
        recorded = self.record.close(
            "recording the error",
            lambda: lifecycle.fail_run(self.lease, self.record.phase, message, log_tail),
        )
        if recorded is None:
            return self._hand_back("could not record the error")
        if not recorded:
            self.record.explain_lost()
            reason = self.stops.reason or StopReason.SUPERSEDED
            return self._stopped(reason)
        log.info("error: %s", message, extra=self.extra)
        return Outcome(self.job_id, Result.ERROR, message)

    def _broke(self, exc: BaseException) -> Outcome:
        """Not media, not a stop: permanent storage failures end the job; the rest retry."""
        assert self.job is not None
        fault = faults.classify(exc)
        if fault is faults.Fault.PERMANENT and not faults.is_backend_error(exc):
            log.exception("unexpected failure", extra=self.extra)
        else:
            log.warning("failed: %s", faults.describe(exc), extra=self.extra)
        reason = faults.describe(exc)
        if self.scratch is not None:
            reason = self.scratch.redact(reason)
        if fault is faults.Fault.PERMANENT and faults.is_backend_error(exc):
            return self._failed(f"storage refused the job: {reason}")
        retries = int(self.job.retries or 0) + 1
        if retries > MAX_TRANSIENT_RETRIES:
            return self._failed(
                f"gave up after {MAX_TRANSIENT_RETRIES} retries; last failure: {reason}"
            )
        self.outputs.remove()
        delay = min(900, 5 * 2**retries + random.randint(0, 5))
        recorded = self.record.close(
            "scheduling a retry",
            lambda: lifecycle.requeue(
                self.lease, self.record.phase, queue=self.job.queue, delay=delay, retries=retries
            ),
        )
        if recorded is None:
            return self._hand_back("could not schedule a retry")
        if not recorded:
            return Outcome(self.job_id, Result.SKIPPED, "lost the job while scheduling a retry")
        return Outcome(self.job_id, Result.RETRY, reason, delay=delay)


def run_message(
    body: str, *, worker_id: str, deadline: float | None = None, stop: threading.Event | None = None
) -> Outcome:
    """Run the job a queue message names; malformed messages are dropped as skipped."""
    try:
        message = messages.parse(body)
    except messages.MalformedMessage as exc:
        log.error("dropping %s", exc)
        return Outcome(0, Result.SKIPPED, "malformed message")
    return JobRun(
        message.job_id, message.attempt, worker_id=worker_id, deadline=deadline, stop=stop
    ).run()
