"""Fixtures the graph's integration tests share: one small mezzanine, and chunking for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import generate

SECONDS = 7.2  # three GOPs of the seeded presets (72 frames at 30 fps)


@pytest.fixture(scope="module")
def mezzanine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graph") / "mezz.mp4"
    return generate(
        path,
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=7:allf=t:all_seed=42",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-g", "50",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
    )  # fmt: skip


@pytest.fixture
def chunky(monkeypatch, scratch):
    """Graph settings for tiny clips: chunk anything, ~3 s chunks."""
    monkeypatch.setenv("OE_CHUNK_MIN_SECONDS", "0")
    monkeypatch.setenv("OE_CHUNK_SECONDS", "3")
    return scratch
