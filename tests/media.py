"""Tiny media files generated with the same ffmpeg the encoder runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from chalicelib.media.probe import ffmpeg_exe


def generate(path: Path, *args: str) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args, "-y", str(path)],
        check=True,
        timeout=120,
    )
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
