"""This process as a host of jobs: the stop its handlers honour, and children that die with it.

Lambda never asks a running handler to stop early; a process that hosts handlers
(the local stack's event pump, a droplet's worker) does, on SIGINT or SIGTERM.
It sets `stopping`; the encode handler passes it to the pipeline, which kills
ffmpeg, removes scratch and hands the job back to its queue, as a Lambda timeout
would. `die_with_parent` makes a child process (ffmpeg, the stack's servers and
workers) die with the process that started it, even when that one is SIGKILLed.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading

stopping = threading.Event()

_PR_SET_PDEATHSIG = 1
# Loaded once in the parent: a preexec_fn should do as little as possible after fork.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """`preexec_fn` for subprocess: SIGKILL this child when its parent thread or process dies.

    Linux's PR_SET_PDEATHSIG; elsewhere a no-op (the local stack's stop still kills
    its children; only a SIGKILLed parent can leave one behind).
    """
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
