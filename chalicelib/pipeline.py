"""The encode pipeline: claim → download → probe → encode → upload → complete.

One module for the three hosts (the encode Lambda, a droplet worker, the local
stack). The job item is the truth: every status change is a conditional write
on (status, attempt, lease owner), so a duplicate delivery, an older attempt or
a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynamodb.exceptions import PynamoDBException, UpdateError

from chalicelib import events, jobs, queues, sandbox, storage
from chalicelib.errors import InvalidInput
from chalicelib.ffmpeg import PresetSpec, parse_preset_data
from chalicelib.jobs import (
    CANCELLED,
    COMPLETED,
    ERROR,
    QUEUED,
    RESTARTING,
    RUNNING,
)
from chalicelib.models import Job, rfc3339, utcnow
from chalicelib.probe import (
    ALLOWED_DEMUXERS,
    MediaError,
    MediaInfo,
    ffmpeg_exe,
    fill_video_bit_rate,
    probe,
)

log = logging.getLogger("openencoder.pipeline")

HEARTBEAT_SECONDS = 2.0  # progress and lease writes: at most one per 2 s, at least one per 5 s
LOG_TAIL_LINES = 50
MAX_TRANSIENT_RETRIES = 3
_ACTIVE_DIRS: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


class Cancelled(Exception):
    """The job was cancelled by a client."""


class Superseded(Exception):
    """This worker no longer owns the job (restarted, or lease taken over)."""


class HandOff(Exception):
    """The job will not finish within this host's time budget."""


class EncodeFailed(Exception):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass
class Outcome:
    job_id: int
    result: str  # completed | error | cancelled | skipped | retry | handed_off | released
    message: str = ""
    retry_delay: int = 0


@dataclass
class Progress:
    percent: float = 0.0
    fps: float | None = None
    speed: str | None = None


def lease_seconds() -> int:
    return int(os.environ.get("OE_LEASE_SECONDS", "30"))


def scratch_root() -> Path:
    return Path(os.environ.get("OE_SCRATCH_DIR") or "/tmp/openencoder")  # noqa: S108 - Lambda's /tmp


def sweep_scratch() -> None:
    """Remove job folders left by a crashed earlier run of this host (not ones in use)."""
    root = scratch_root()
    if not root.is_dir():
        return
    for child in root.iterdir():
        owner = child / ".owner"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            pid = -1
        with _ACTIVE_LOCK:
            in_use = str(child) in _ACTIVE_DIRS
        if in_use:
            continue
        if pid == os.getpid() or not _alive(pid):
            shutil.rmtree(child, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    speed_720p = float(os.environ.get("OE_ENCODE_SPEED", "2.0"))
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
    return duration * pixels * codec * passes / speed_720p


class JobRun:
    """One attempt of one job on this host."""

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
        self.host_stop = stop or threading.Event()
        self.job: Job | None = None
        self.phase = QUEUED
        self.progress = Progress()
        self.cancelled = threading.Event()
        self.superseded = threading.Event()
        self.hand_off = threading.Event()
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.uploaded: list[storage.S3Location] = []
        self.workdir: Path | None = None
        self.phases: dict[str, str] = {}
        self._heartbeat: threading.Thread | None = None
        self._done = threading.Event()

    # --- conditions and transitions ---------------------------------------

    def _mine(self) -> Any:
        return (Job.attempt == self.attempt) & (Job.lease_owner == self.worker_id)

    def claim(self) -> bool:
        now = time.time()
        fresh = Job.status.is_in(QUEUED, RESTARTING) & (Job.attempt == self.attempt)
        expired = (
            Job.status.is_in(*RUNNING) & (Job.attempt == self.attempt) & (Job.lease_expires < now)
        )
        job = Job(self.job_id)
        self.phases = {"claimed": rfc3339(utcnow())}
        try:
            job.update(
                actions=[
                    Job.status.set("downloading"),
                    Job.lease_owner.set(self.worker_id),
                    Job.lease_expires.set(int(now + lease_seconds())),
                    Job.progress.set(0),
                    Job.phases.set(self.phases),
                    Job.updated_date.set(utcnow()),
                ],
                condition=fresh | expired,
            )
        except UpdateError:
            return False
        self.job = job
        self.phase = "downloading"
        self._log_phase()
        return True

    def _log_phase(self) -> None:
        log.info("job %s attempt %s: %s", self.job_id, self.attempt, self.phase,
                 extra={"job_id": self.job_id, "attempt": self.attempt, "phase": self.phase,
                        "worker": self.worker_id})  # fmt: skip

    def advance(self, status: str, **fields: Any) -> None:
        """Move to the next phase, conditionally; a failed condition means cancel or takeover."""
        with self.lock:
            self.phases[status] = rfc3339(utcnow())
            actions = [
                Job.status.set(status),
                Job.phases.set(self.phases),
                Job.updated_date.set(utcnow()),
                Job.lease_expires.set(int(time.time() + lease_seconds())),
            ]
            actions += [getattr(Job, name).set(value) for name, value in fields.items()]
            try:
                Job(self.job_id).update(
                    actions=actions, condition=self._mine() & (Job.status == self.phase)
                )
            except UpdateError:
                self._why_lost()
                self.raise_if_stopped()
                raise
            self.phase = status
        self._log_phase()

    def _why_lost(self) -> None:
        try:
            current = Job.get(self.job_id, consistent_read=True)
        except Job.DoesNotExist:
            self.superseded.set()
            return
        if current.attempt != self.attempt or current.lease_owner != self.worker_id:
            self.superseded.set()
        elif current.status == CANCELLED:
            self.cancelled.set()
        else:
            self.superseded.set()

    def should_stop(self) -> bool:
        return any(
            e.is_set() for e in (self.cancelled, self.superseded, self.hand_off, self.host_stop)
        )

    def raise_if_stopped(self) -> None:
        if self.superseded.is_set():
            raise Superseded()
        if self.cancelled.is_set():
            raise Cancelled()
        if self.hand_off.is_set() or self.host_stop.is_set():
            raise HandOff()

    # --- heartbeat: lease, progress, cancel ---------------------------------

    def _beat(self) -> None:
        while not self._done.wait(HEARTBEAT_SECONDS):
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.hand_off.set()
                self.kill()
            with self.lock:
                actions = [
                    Job.lease_expires.set(int(time.time() + lease_seconds())),
                    Job.updated_date.set(utcnow()),
                ]
                if self.phase == "encoding":
                    actions.append(Job.progress.set(round(self.progress.percent, 2)))
                    events.job_progress(self.job_id, self.progress.percent)  # at most 1 per 10 s
                    if self.progress.fps is not None:
                        actions.append(Job.fps.set(self.progress.fps))
                    if self.progress.speed is not None:
                        actions.append(Job.speed.set(self.progress.speed))
                try:
                    Job(self.job_id).update(
                        actions=actions, condition=self._mine() & (Job.status == self.phase)
                    )
                except UpdateError:
                    self._why_lost()
                except PynamoDBException:
                    log.warning("heartbeat write failed for job %s; will retry", self.job_id)
            if self.should_stop():
                self.kill()

    def kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    # --- the run -----------------------------------------------------------

    def run(self) -> Outcome:
        sweep_scratch()
        if not self.claim():
            return Outcome(
                self.job_id, "skipped", "not claimable: duplicate, old attempt or live lease"
            )
        return self.execute()

    def execute(self) -> Outcome:
        """Everything after a successful claim; scratch space is removed on every path."""
        assert self.job is not None
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"heartbeat-{self.job_id}", daemon=True
        )
        self._heartbeat.start()
        self.workdir = scratch_root() / f"{self.job.guid}-{self.attempt}"
        with _ACTIVE_LOCK:
            _ACTIVE_DIRS.add(str(self.workdir))
        try:
            return self._run()
        finally:
            self._done.set()
            self._heartbeat.join(timeout=10)
            self.kill()
            shutil.rmtree(self.workdir, ignore_errors=True)
            with _ACTIVE_LOCK:
                _ACTIVE_DIRS.discard(str(self.workdir))

    def _run(self) -> Outcome:
        assert self.job is not None and self.workdir is not None
        try:
            spec = self._preset()
            info = self._download_and_probe()
            self._check_budget(info, spec)
            self.advance("encoding", probe=info.summary())
            self._encode(spec, info)
            self.advance("uploading", progress=100)
            outputs = self._upload()
            self.advance(COMPLETED, outputs=outputs, progress=100)
            events.job_finished(self.job_id, COMPLETED)  # webhooks: job.completed
            self._release()
            return Outcome(self.job_id, COMPLETED)
        except Cancelled:
            self._remove_uploads()
            self._release()
            return Outcome(self.job_id, CANCELLED, "cancelled by a client")
        except Superseded:
            return Outcome(self.job_id, "skipped", "another attempt or worker owns the job now")
        except HandOff:
            return self._hand_off()
        except (EncodeFailed, MediaError, storage.SourceMissing) as exc:
            log_tail = getattr(exc, "log_tail", "")
            self._fail(str(exc), log_tail)
            return Outcome(self.job_id, ERROR, str(exc))
        except (PynamoDBException, OSError, Exception) as exc:  # noqa: BLE001
            return self._transient(exc)

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

    def _download_and_probe(self) -> MediaInfo:
        assert self.job is not None and self.workdir is not None
        source = storage.from_uri(self.job.source)
        size = storage.object_size(source)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / ".owner").write_text(str(os.getpid()))
        (self.workdir / "out").mkdir(exist_ok=True)
        free = shutil.disk_usage(self.workdir).free
        limit = int(os.environ.get("OE_SCRATCH_BYTES", "0")) or free
        # Room for the source and about as much again for the outputs.
        if size * 2 > min(limit, free):
            raise EncodeFailed(
                f"source is {size} bytes but scratch space holds {min(limit, free)} bytes "
                "(source plus outputs); use a smaller source or a host with more storage"
            )
        if size == 0:
            raise EncodeFailed("source is empty (0 bytes)")
        suffix = Path(source.key).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
            suffix = ""  # the name is ours; ffmpeg probes the content, not the name
        self.source_path = self.workdir / f"source{suffix}"
        try:
            storage.download(source, self.source_path, self.should_stop)
        except storage.Stopped:
            self.raise_if_stopped()
            raise
        self.raise_if_stopped()
        self.advance("probing")
        info = probe(self.source_path)
        self.raise_if_stopped()
        return info

    def _check_budget(self, info: MediaInfo, spec: PresetSpec) -> None:
        if self.deadline is None:
            return
        needed = estimate_encode_seconds(info, spec)
        left = self.deadline - time.monotonic()
        if needed > left:
            log.info("job %s needs ~%.0f s, %.0f s left: handing off", self.job_id, needed, left)
            raise HandOff()

    def _ffmpeg(self, args: list[str], duration: float | None, cwd: Path, seconds: float) -> None:
        assert self.workdir is not None
        argv = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
            "-progress", "pipe:1", *sandbox.INPUT_FENCE, "-format_whitelist", ALLOWED_DEMUXERS,
            "-i", f"file:{self.source_path}", *args,
        ]  # fmt: skip
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.process = process = sandbox.FencedProcess(
            argv,
            cwd=cwd,
            home=self.workdir / "home",
            seconds=seconds,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        reader = threading.Thread(target=lambda: tail.extend(self.process.stderr), daemon=True)
        reader.start()
        for line in self.process.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit() and duration:
                self.progress.percent = min(100.0, int(value) / 1e6 / duration * 100)
            elif key == "fps":
                with contextlib.suppress(ValueError):
                    self.progress.fps = float(value)
            elif key == "speed" and value not in ("", "N/A"):
                self.progress.speed = value
        code = self.process.wait()
        reader.join(timeout=5)
        self.raise_if_stopped()
        if process.timed_out:
            raise EncodeFailed(
                f"ffmpeg ran longer than its limit of {seconds:.0f} s and was stopped; "
                "raise OE_FFMPEG_MAX_SECONDS or use a lighter preset",
                "\n".join(line.rstrip() for line in tail if line.strip()),
            )
        if process.file_too_big:
            raise EncodeFailed(
                f"ffmpeg wrote a file larger than {process.max_file_bytes} bytes and was "
                "stopped; raise OE_FFMPEG_MAX_FILE_BYTES or lower the preset's bit rate"
            )
        if code != 0:
            lines = [line.rstrip() for line in tail if line.strip()]
            last = lines[-1] if lines else f"exit code {code}"
            raise EncodeFailed(f"ffmpeg failed: {last}", "\n".join(lines))

    def _encode(self, spec: PresetSpec, info: MediaInfo) -> None:
        assert self.job is not None and self.workdir is not None
        wants_video = (
            any(a in ("-c:v", "-vf", "-codec:v") for a in spec.args) and "-vn" not in spec.args
        )
        if wants_video and info.video is None:
            raise EncodeFailed(
                f"source has no video stream but preset {self.job.preset!r} encodes video; "
                "use an audio preset or a source with video"
            )
        out = self.workdir / "out"
        output = self.job.preset_snapshot["output"]
        seconds = sandbox.time_limit(self.deadline, estimate_encode_seconds(info, spec))
        fence = sandbox.OUTPUT_FENCE
        if spec.two_pass:
            passlog = str(self.workdir / "passlog")
            first = [*spec.args, "-pass", "1", "-passlogfile", passlog, "-an", "-f", "null"]
            self._ffmpeg([*first, *fence, os.devnull], info.duration, out, seconds)
            second = [*spec.args, "-pass", "2", "-passlogfile", passlog, *fence, output]
            self._ffmpeg(second, info.duration, out, seconds)
        else:
            self._ffmpeg([*spec.args, *fence, output], info.duration, out, seconds)
        self.progress.percent = 100.0

    def _upload(self) -> list[dict]:
        assert self.job is not None and self.workdir is not None
        dest = storage.from_uri(self.job.dest)
        out = self.workdir / "out"
        outputs = []
        files = sorted(p for p in out.rglob("*") if p.is_file())
        if not files:
            raise EncodeFailed("ffmpeg wrote no output files")
        for path in files:
            self.raise_if_stopped()
            location = storage.S3Location(dest.bucket, dest.key + path.relative_to(out).as_posix())
            try:
                storage.upload(path, location, self.should_stop)
            except storage.Stopped:
                self.raise_if_stopped()
                raise
            self.uploaded.append(location)
            outputs.append(self._describe_output(path, location))
        return outputs

    @staticmethod
    def _describe_output(path: Path, location: storage.S3Location) -> dict:
        record: dict[str, Any] = {
            "key": location.key,
            "uri": location.uri,
            "size": path.stat().st_size,
        }
        if path.suffix.lower() in (".m3u8", ".mpd", ".vtt", ".txt"):
            return record
        try:
            info = fill_video_bit_rate(path, probe(path))
        except MediaError:
            return record
        video = info.video
        stream = video or info.audio
        record.update(
            {
                "duration": info.duration,
                "container": info.container,
                "codec": stream.codec if stream else None,
                "profile": stream.profile if stream else None,
                "width": video.width if video else None,
                "height": video.height if video else None,
                "bit_rate": (stream.bit_rate if stream and stream.bit_rate else info.bit_rate),
            }
        )
        return {k: v for k, v in record.items() if v is not None}

    # --- endings -----------------------------------------------------------

    def _release(self) -> None:
        """Drop the lease once the job has reached a terminal status."""
        with contextlib.suppress(UpdateError):
            Job(self.job_id).update(
                actions=[Job.lease_owner.remove(), Job.lease_expires.remove()],
                condition=self._mine(),
            )

    def _remove_uploads(self) -> None:
        try:
            storage.delete(self.uploaded)
        except Exception:
            log.warning("could not delete partial outputs of job %s", self.job_id, exc_info=True)

    def _fail(self, message: str, log_tail: str = "") -> None:
        self._remove_uploads()
        with self.lock:
            condition = self._mine() & Job.status.is_in(*RUNNING)
            if not jobs.fail(self.job_id, message, condition=condition, log=log_tail):
                self._why_lost()

    def _requeue(self, queue: str, *, retries: int | None = None) -> bool:
        """Back to `queued` as the same attempt, lease released."""
        actions = [
            Job.status.set(QUEUED),
            Job.queue.set(queue),
            Job.lease_owner.remove(),
            Job.lease_expires.remove(),
            Job.progress.set(0),
            Job.updated_date.set(utcnow()),
        ]
        if retries is not None:
            actions.append(Job.retries.set(retries))
        with self.lock:
            try:
                Job(self.job_id).update(
                    actions=actions, condition=self._mine() & Job.status.is_in(*RUNNING)
                )
            except UpdateError:
                self._why_lost()
                return False
        return True

    def _hand_off(self) -> Outcome:
        self._remove_uploads()
        if self.host_stop.is_set() and not self.hand_off.is_set():
            # The host is shutting down: give the job back to its own queue.
            assert self.job is not None
            self._requeue(self.job.queue)
            return Outcome(self.job_id, "released", "host stopping; job returned to its queue")
        if not self._requeue("long"):
            return Outcome(self.job_id, "skipped", "lost the job while handing it off")
        queues.send_job("long", self.job_id, self.attempt)
        return Outcome(self.job_id, "handed_off", "too long for this host: sent to the long queue")

    def _transient(self, exc: BaseException) -> Outcome:
        assert self.job is not None
        log.warning("job %s attempt %s: transient failure", self.job_id, self.attempt, exc_info=exc)
        self._remove_uploads()
        retries = int(self.job.retries or 0) + 1
        reason = f"{type(exc).__name__}: {exc}"[:500]
        if retries > MAX_TRANSIENT_RETRIES:
            self._fail(f"gave up after {MAX_TRANSIENT_RETRIES} retries; last failure: {reason}")
            return Outcome(self.job_id, ERROR, reason)
        if not self._requeue(self.job.queue, retries=retries):
            return Outcome(self.job_id, "skipped", "lost the job while scheduling a retry")
        return Outcome(self.job_id, "retry", reason, retry_delay=min(900, 5 * 2**retries))


def run_message(body: str, *, worker_id: str, deadline: float | None = None,
                stop: threading.Event | None = None) -> Outcome:  # fmt: skip
    """Run the job a queue message names; malformed messages are dropped as skipped."""
    try:
        message = json.loads(body)
        job_id, attempt = int(message["job_id"]), int(message["attempt"])
    except (ValueError, KeyError, TypeError):
        log.error("dropping malformed job message: %r", body[:200])
        return Outcome(0, "skipped", "malformed message")
    return JobRun(job_id, attempt, worker_id=worker_id, deadline=deadline, stop=stop).run()
