"""A job's scratch folder on this host: made for one run, removed on every way out.

Folders left by a crashed earlier run of the host are swept at the next start; a folder
in use by a live run (this process or another) is never touched. Messages that leave
the host never show scratch paths: `redact` replaces them.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

_ACTIVE: set[str] = set()
_LOCK = threading.Lock()


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


def sweep(root: Path) -> None:
    """Remove job folders left by a crashed earlier run of this host (not ones in use)."""
    if not root.is_dir():
        return
    for child in root.iterdir():
        try:
            pid = int((child / ".owner").read_text())
        except (OSError, ValueError):
            pid = -1
        with _LOCK:
            if str(child) in _ACTIVE:
                continue
        if pid == os.getpid() or not _alive(pid):
            shutil.rmtree(child, ignore_errors=True)


class Scratch:
    """`with Scratch(root, name) as folder:` — `folder.path`, `folder.out` for outputs."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.path = root / name
        self.out = self.path / "out"

    def __enter__(self) -> Scratch:
        sweep(self.root)
        with _LOCK:
            _ACTIVE.add(str(self.path))
        self.out.mkdir(parents=True, exist_ok=True)
        (self.path / ".owner").write_text(str(os.getpid()))
        return self

    def __exit__(self, *_exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with _LOCK:
            _ACTIVE.discard(str(self.path))

    def free_bytes(self, limit: int = 0) -> int:
        free = shutil.disk_usage(self.path).free
        return min(limit, free) if limit else free

    def redact(self, text: str) -> str:
        """`text` without this folder's path (ffmpeg names its files in errors)."""
        return text.replace(str(self.out) + os.sep, "").replace(str(self.path), "<scratch>")
