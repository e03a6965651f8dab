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

from chalicelib import sandbox

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
