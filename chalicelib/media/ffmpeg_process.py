"""One ffmpeg run: argv list (no shell), progress from `-progress pipe:1`, the log tail,
and a kill that reaches ffmpeg's whole process group. The process itself is started
inside the sandbox's fence (clean environment, scratch as home, a deadline)."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from chalicelib.media import sandbox
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.media.steps import FFMPEG_PREFIX, FfmpegKilled, MediaFailed

if TYPE_CHECKING:
    from chalicelib.media.scratch import Scratch


class Stops(Protocol):
    """Why the run must stop, if it must: `check()` raises then (the runner's own type)."""

    def check(self) -> None: ...


LOG_TAIL_LINES = 50


@dataclass
class Progress:
    percent: float = 0.0
    fps: float | None = None
    speed: str | None = None


class FfmpegProcess:
    def __init__(self, argv: list[str], *, cwd: Path, home: Path, seconds: float,
                 duration: float | None, progress: Progress) -> None:  # fmt: skip
        self.argv = argv
        self.cwd = cwd
        self.home = home
        self.seconds = seconds  # the fence kills the process group after this long
        self.duration = duration
        self.progress = progress
        self.process: sandbox.FencedProcess | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)

    def start(self) -> sandbox.FencedProcess:
        self.process = sandbox.FencedProcess(
            self.argv,
            cwd=self.cwd,
            home=self.home,
            seconds=self.seconds,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        return self.process

    @property
    def cpu_seconds(self) -> float:
        """CPU time ffmpeg used (all its threads), known once it has ended."""
        return self.process.cpu_seconds if self.process is not None else 0.0

    @property
    def timed_out(self) -> bool:
        return self.process is not None and self.process.timed_out

    def run(self) -> int:
        """Run to the end (or until killed), following progress; the exit code."""
        process = self.start()
        reader = threading.Thread(target=lambda: self.tail.extend(process.stderr), daemon=True)
        reader.start()
        for line in process.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit() and self.duration:
                self.progress.percent = min(100.0, int(value) / 1e6 / self.duration * 100)
            elif key == "fps":
                with contextlib.suppress(ValueError):
                    self.progress.fps = float(value)
            elif key == "speed" and value not in ("", "N/A"):
                self.progress.speed = value
        code = process.wait()
        reader.join(timeout=5)
        return code

    def log_lines(self) -> list[str]:
        return [line.rstrip() for line in self.tail if line.strip()]

    def kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.kill_group()


class FfmpegRunner:
    """The graph steps' `Run` (chalicelib.media.steps) over FfmpegProcess: each run fenced,
    its progress followed, its CPU time added up, killed when `stops` is set."""

    def __init__(
        self, stops: Stops, progress: Progress, scratch: Scratch, deadline: float | None
    ) -> None:
        self.stops = stops
        self.progress = progress
        self.scratch = scratch
        self.deadline = deadline
        self.current: FfmpegProcess | None = None
        self.cpu_seconds = 0.0  # every run's CPU time: what the task cost

    def __call__(
        self,
        args: list[str],
        cwd: Path,
        duration: float | None = None,
        *,
        estimate: float | None = None,
    ) -> None:
        """Run ffmpeg with `args` in `cwd`; MediaFailed with its last lines if it fails.

        `duration` (seconds of media) turns ffmpeg's progress into a percentage; the time
        limit is the host's deadline, or bounded from `estimate` (default: `duration`).
        """
        cwd.mkdir(parents=True, exist_ok=True)
        argv = [ffmpeg_exe(), *FFMPEG_PREFIX, "-progress", "pipe:1", *args]
        seconds = sandbox.time_limit(self.deadline, estimate if estimate is not None else duration)
        self.stops.check()
        self.current = FfmpegProcess(
            argv,
            cwd=cwd,
            home=self.scratch.path / "home",
            seconds=seconds,
            duration=duration,
            progress=self.progress,
        )
        code = self.current.run()
        self.cpu_seconds += self.current.cpu_seconds
        self.stops.check()
        lines = [self.scratch.redact(line) for line in self.current.log_lines()]
        if self.current.timed_out:
            raise MediaFailed(
                f"ffmpeg ran longer than its limit of {seconds:.0f} s and was stopped; "
                "raise OE_FFMPEG_MAX_SECONDS or use a lighter preset",
                "\n".join(lines),
            )
        process = self.current.process
        if process is not None and process.file_too_big:
            raise MediaFailed(
                f"ffmpeg wrote a file larger than {process.max_file_bytes} bytes and was "
                "stopped; raise OE_FFMPEG_MAX_FILE_BYTES or lower the preset's bit rate"
            )
        if code < 0:  # a signal this run did not send (the stops would have said so)
            raise FfmpegKilled(-code, "\n".join(lines))
        if code != 0:
            last = lines[-1] if lines else f"exit code {code}"
            raise MediaFailed(f"ffmpeg failed: {last}", "\n".join(lines))

    def kill(self) -> None:
        if self.current is not None:
            self.current.kill()
