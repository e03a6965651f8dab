"""Tiny media files generated with the same ffmpeg the encoder runs.

Each file is made once per test session and shared by the parallel workers: `generate`
keys it by its ffmpeg arguments in a cache folder (see `use_cache`), made under a file
lock by the first worker that asks, and copied to the path each caller names.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from chalicelib.media.probe import ffmpeg_exe

_cache: Path | None = None


def use_cache(folder: Path) -> None:
    """Keep generated files in `folder` (one per session, shared by the session's workers)."""
    global _cache
    folder.mkdir(parents=True, exist_ok=True)
    _cache = folder


def generate(path: Path, *args: str) -> Path:
    argv = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args, "-y"]
    if _cache is None:
        subprocess.run([*argv, str(path)], check=True, timeout=120)
        return path
    # The suffix picks the container, so it is part of the key, as every argument is.
    key = hashlib.sha256("\0".join([*argv, path.suffix]).encode()).hexdigest()[:24]
    cached = _cache / f"{key}{path.suffix}"
    with open(f"{cached}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its worker dies
        if not cached.exists():
            partial = cached.with_name(f"partial-{cached.name}")
            subprocess.run([*argv, str(partial)], check=True, timeout=120)
            os.replace(partial, cached)
    # A copy, not a link: a test may change its file without changing another test's.
    shutil.copyfile(cached, path)
    return path


def av_clip(
    path: Path,
    seconds: float = 3,
    size: str = "1280x720",
    rate: int = 24,
    bitrate: str | None = None,
) -> Path:
    """A clip with seeded noise; near-lossless (CRF 18) unless a video `bitrate` is given."""
    quality = (
        ["-crf", "18"]
        if bitrate is None
        else ["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
    )
    return generate(
        path,
        # Seeded noise gives the encoders real work, so rate control reaches
        # its target even on a 3 s clip (libvpx undershoots on clean test patterns).
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate},noise=alls=7:allf=t:all_seed=42",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", *quality,
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
    )  # fmt: skip


def audio_clip(path: Path, seconds: float = 2) -> Path:
    return generate(
        path, "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:a", "aac"
    )
