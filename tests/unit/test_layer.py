"""The ffmpeg layer: a hash-checked static ffmpeg at bin/ffmpeg that runs."""

from __future__ import annotations

import importlib.util
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def load_build():
    spec = importlib.util.spec_from_file_location("layer_build", ROOT / "layers/ffmpeg/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_x86_64_layer_holds_an_executable_ffmpeg_that_encodes(tmp_path):
    path, unzipped = load_build().build("x86_64", tmp_path / "dist")
    with zipfile.ZipFile(path) as layer:
        assert layer.namelist() == ["bin/ffmpeg"]
        mode = layer.getinfo("bin/ffmpeg").external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o111
        layer.extractall(tmp_path / "opt")
    binary = tmp_path / "opt/bin/ffmpeg"
    binary.chmod(0o755)
    out = tmp_path / "x.mp4"
    subprocess.run([str(binary), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=d=1",
                    "-c:v", "libx264", "-y", str(out)], check=True, timeout=60)  # fmt: skip
    assert out.stat().st_size > 0
    assert unzipped < 250 * 1024 * 1024


def test_the_layer_wheels_are_pinned_by_hash():
    for arch in ("x86_64", "arm64"):
        text = (ROOT / f"layers/ffmpeg/requirements-{arch}.txt").read_text()
        assert "--hash=sha256:" in text and "==" in text
