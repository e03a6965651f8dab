"""ffmpeg fenced in: a clean environment, the job's scratch folder, file-only protocols, a deadline.

Defence in depth behind the preset allow-list (DESIGN.md, "Trust model for presets"):
even an option that slipped through could see no credential (the environment holds
only PATH, a HOME inside scratch and the locale), reach no network (file is the only
protocol on the input and the output, but for the engine's loopback URL of the source:
see LOOPBACK_INPUT_FENCE), write no file larger than a bound
(RLIMIT_FSIZE), and not run past its deadline (the process group is killed). Every
ffmpeg that chalicelib starts goes through here.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib import host
from chalicelib.config import settings

# /opt/bin is the ffmpeg layer in Lambda; ffmpeg is started by absolute path anyway.
SAFE_PATH = "/opt/bin:/usr/local/bin:/usr/bin:/bin"
LOCALE = "C.UTF-8"
# Placed before the job's input and before its output: ffmpeg then opens nothing but
# local files, including the segments and playlists a muxer opens by itself.
INPUT_FENCE = ("-protocol_whitelist", "file")
# The one exception, and only before the engine's own loopback URL of a job's source
# (argv.Loopback, served by chalicelib/store/source_proxy.py): plain HTTP to 127.0.0.1 needs
# nothing more. Never before a preset's input, an intermediate or any output; the input's
# `-format_whitelist` keeps playlists and lists (hls, concat, ...) from naming other URLs.
LOOPBACK_INPUT_FENCE = ("-protocol_whitelist", "http,tcp")
OUTPUT_FENCE = ("-protocol_whitelist", "file")
# In Lambda the pipeline hands the job off a minute before the function times out; the
# fence fires half-way through that margin, so the job can still be failed cleanly.
LAMBDA_GRACE_SECONDS = 30.0
# On droplets with no configured cap: a generous multiple of the estimate.
ESTIMATE_FACTOR = 4.0
ESTIMATE_FLOOR_SECONDS = 600.0


class DeadlineExceeded(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"ffmpeg ran longer than its limit of {seconds:.0f} s and was stopped")
        self.seconds = seconds


def clean_env(home: Path) -> dict[str, str]:
    """All that ffmpeg gets from us: no AWS_*, DIGITALOCEAN_*, OE_* or anything else."""
    return {"PATH": SAFE_PATH, "HOME": str(home), "LANG": LOCALE, "LC_ALL": LOCALE}


def time_limit(deadline: float | None, estimate_seconds: float | None = None) -> float:
    """Seconds one ffmpeg run may take.

    `deadline` is the host's hand-off time on time.monotonic()'s clock (Lambda), or None
    (droplets, local worker): then OE_FFMPEG_MAX_SECONDS, or a multiple of the estimate.
    """
    if deadline is not None:
        return max(1.0, deadline - time.monotonic()) + LAMBDA_GRACE_SECONDS
    cap = settings().ffmpeg_max_seconds
    if cap > 0:
        return float(cap)
    return ESTIMATE_FACTOR * max(0.0, estimate_seconds or 0.0) + ESTIMATE_FLOOR_SECONDS


class FencedProcess(subprocess.Popen):
    """An ffmpeg process inside the fence; its whole process group dies at the deadline."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        home: Path,
        seconds: float,
        max_file_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        home.mkdir(parents=True, exist_ok=True)
        super().__init__(
            argv,
            cwd=cwd,
            env=clean_env(home),
            stdin=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # its own process group, so a kill reaches everything
            # Never outlives the worker or local stack that started it, even one SIGKILLed.
            preexec_fn=host.die_with_parent,
            **kwargs,
        )
        self.max_file_bytes = max_file_bytes or settings().ffmpeg_max_file_bytes
        # Set right after exec (preexec_fn is unsafe in a threaded host); ffmpeg opens
        # its outputs only after probing the input, long after this.
        with contextlib.suppress(OSError):
            limit = (self.max_file_bytes, self.max_file_bytes)
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, limit)
        self.seconds = seconds
        self.timed_out = False
        self.cpu_seconds = 0.0  # user + system time of ffmpeg and its threads, once reaped
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        if self.poll() is None:
            self.timed_out = True
            self.kill_group()

    @property
    def file_too_big(self) -> bool:
        """The kernel stopped ffmpeg for writing past max_file_bytes (SIGXFSZ)."""
        return self.returncode == -signal.SIGXFSZ

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        self._timer.cancel()
        return code

    # Popen reaps with waitpid, which drops the child's resource usage; wait4 returns it.
    # This one process's CPU time is what a task cost (RUSAGE_CHILDREN would mix in every
    # other ffmpeg this host runs at the same time). Both of Popen's reaping paths, the
    # blocking wait and poll, go through `_reap`.
    def _reap(self, pid: int, flags: int) -> tuple[int, int]:
        reaped, status, usage = os.wait4(pid, flags)
        if reaped == pid:
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
        return reaped, status

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            return self._reap(self.pid, wait_flags)
        except ChildProcessError:  # reaped elsewhere: the same answer Popen gives
            return self.pid, 0

    def poll(self) -> int | None:
        return self._internal_poll(_waitpid=self._reap)  # type: ignore[attr-defined]


def run(
    argv: list[str], *, cwd: Path, seconds: float, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg to the end inside the fence and capture its text output."""
    with FencedProcess(
        argv,
        cwd=cwd,
        home=home or cwd,
        seconds=seconds,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as process:
        stdout, stderr = process.communicate()
    if process.timed_out:
        raise DeadlineExceeded(seconds)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
