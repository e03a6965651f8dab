"""ffmpeg fenced in: what a hostile preset sees and where it can write, with real ffmpeg."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from chalicelib.errors import InvalidInput
from chalicelib.media import sandbox
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.presets.spec import parse_preset_data
from tests.polling import wait_until

pytestmark = pytest.mark.slow

MARKERS = {
    "AWS_SECRET_ACCESS_KEY": "marker-aws-secret-5d1f",
    "AWS_ACCESS_KEY_ID": "marker-aws-key-5d1f",
    "AWS_SESSION_TOKEN": "marker-aws-session-5d1f",
    "DIGITALOCEAN_TOKEN": "marker-do-token-5d1f",
    "OE_JWT_KEY_PARAMETER": "marker-oe-5d1f",
}
FENCE_KEYS = {"PATH", "HOME", "LANG", "LC_ALL"}

# Passed the deny-list validator this replaces: the quoted filter name was not on its
# list, and the tab hid the absolute path from its "starts with /" check; ffmpeg drops
# both the quotes and the tab. It copies the bytes of ffmpeg's own environment into the
# output, which makes "what ffmpeg can see" a file the test can read.
ENV_TO_OUTPUT = ["-filter_complex", "'amovie'=filename=\t/proc/self/environ:f=u8",
                 "-c:a", "pcm_u8", "-f", "u8"]  # fmt: skip


@pytest.fixture
def parent_secrets(monkeypatch):
    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def job_dirs(tmp_path, monkeypatch):
    """A job's scratch folder (out/ as cwd, home/ as HOME) and the parent's own folder."""
    scratch = tmp_path / "scratch"
    (scratch / "out").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)  # the worker's cwd: nothing may appear here
    return scratch, outside


def _env_of(raw: bytes) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in raw.decode().split("\0") if "=" in item]
    return dict(pairs)


def test_the_env_leaking_preset_is_refused_by_the_allow_list():
    with pytest.raises(InvalidInput, match="-filter_complex"):
        parse_preset_data(json.dumps({"raw": [" ".join(ENV_TO_OUTPUT)]}))


def test_a_preset_that_dumps_its_environment_sees_no_credential(parent_secrets, job_dirs):
    scratch, outside = job_dirs
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
            *ENV_TO_OUTPUT, *sandbox.OUTPUT_FENCE, "-y", "seen.raw"]  # fmt: skip
    result = sandbox.run(argv, cwd=scratch / "out", home=scratch / "home", seconds=60)
    assert result.returncode == 0, result.stderr
    raw = (scratch / "out" / "seen.raw").read_bytes()
    seen = _env_of(raw)
    assert set(seen) == FENCE_KEYS, seen  # the exploit ran: it saw the fence, nothing else
    assert Path(seen["HOME"]) == scratch / "home"
    for marker in MARKERS.values():
        assert marker.encode() not in raw
    assert list(outside.iterdir()) == []


def test_a_running_ffmpeg_holds_only_the_fenced_environment(parent_secrets, job_dirs):
    scratch, _ = job_dirs
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i",
            "testsrc=s=32x24:r=5", "-f", "null", "-"]  # fmt: skip
    process = sandbox.FencedProcess(argv, cwd=scratch / "out", home=scratch / "home", seconds=60,
                                    stdout=sandbox.subprocess.DEVNULL,
                                    stderr=sandbox.subprocess.DEVNULL)  # fmt: skip
    try:
        environ = Path(f"/proc/{process.pid}/environ")
        raw = wait_until(lambda: environ.read_bytes(), 10, "ffmpeg's /proc environ")
        assert set(_env_of(raw)) == FENCE_KEYS
        assert all(marker.encode() not in raw for marker in MARKERS.values())
        assert Path(f"/proc/{process.pid}/cwd").resolve() == (scratch / "out").resolve()
    finally:
        process.kill_group()
        process.wait()


def test_side_files_an_encoder_writes_by_itself_land_in_scratch(job_dirs):
    scratch, outside = job_dirs
    # x264's first pass writes x264_2pass.log (and .mbtree) into the working directory.
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc=s=64x48:d=0.5", "-c:v", "libx264", "-x264-params", "pass=1",
            *sandbox.OUTPUT_FENCE, "-f", "mp4", "-y", "out.mp4"]  # fmt: skip
    result = sandbox.run(argv, cwd=scratch / "out", home=scratch / "home", seconds=60)
    assert result.returncode == 0, result.stderr
    written = {p.name for p in (scratch / "out").iterdir()}
    assert "out.mp4" in written and any(name.startswith("x264_2pass") for name in written)
    assert list(outside.iterdir()) == []


def test_outputs_other_than_local_files_are_refused_by_ffmpeg(job_dirs):
    scratch, _ = job_dirs
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-f", "lavfi", "-i",
            "testsrc=s=32x24:d=0.2", *sandbox.OUTPUT_FENCE, "-f", "mpegts",
            "tcp://127.0.0.1:9"]  # fmt: skip
    result = sandbox.run(argv, cwd=scratch / "out", seconds=60)
    assert result.returncode != 0
    assert "not on whitelist" in result.stderr


def test_a_run_past_its_deadline_is_killed_with_its_process_group(job_dirs):
    scratch, _ = job_dirs
    endless = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i",
               "testsrc=s=32x24", "-f", "null", "-"]  # fmt: skip
    with pytest.raises(sandbox.DeadlineExceeded, match="limit of 1 s"):
        sandbox.run(endless, cwd=scratch / "out", seconds=1)


@pytest.fixture
def fresh_settings():
    from chalicelib.config import settings

    settings.cache_clear()
    yield settings
    settings.cache_clear()  # before monkeypatch puts the environment back


def test_time_limits_follow_lambda_time_or_the_droplet_cap(fresh_settings, monkeypatch):
    settings = fresh_settings
    now = sandbox.time.monotonic()
    assert sandbox.time_limit(now + 100) == pytest.approx(100 + sandbox.LAMBDA_GRACE_SECONDS, 1)
    settings.cache_clear()
    monkeypatch.setenv("OE_FFMPEG_MAX_SECONDS", "1234")
    assert sandbox.time_limit(None, 10) == 1234
    settings.cache_clear()
    monkeypatch.delenv("OE_FFMPEG_MAX_SECONDS")
    assert sandbox.time_limit(None, 100) == 4 * 100 + 600


def test_a_file_larger_than_the_bound_stops_ffmpeg(job_dirs):
    scratch, _ = job_dirs
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc=s=320x240:d=2", "-c:v", "rawvideo", *sandbox.OUTPUT_FENCE,
            "-f", "nut", "-y", "big.nut"]  # fmt: skip
    process = sandbox.FencedProcess(argv, cwd=scratch / "out", home=scratch / "home", seconds=60,
                                    max_file_bytes=100_000, stderr=sandbox.subprocess.DEVNULL)  # fmt: skip
    process.wait()
    assert process.file_too_big
    assert (scratch / "out" / "big.nut").stat().st_size <= 100_000


def test_each_run_reports_its_own_cpu_time_through_wait_and_poll(job_dirs):
    """A task's cost is its ffmpeg's CPU time: measured per process, whichever way it is reaped."""
    scratch, _ = job_dirs
    busy = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-f", "lavfi", "-i",
            "testsrc2=s=640x360:d=4", "-c:v", "libx264", "-preset", "medium", "-f", "null", "-"]  # fmt: skip
    idle = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-f", "lavfi", "-i",
            "nullsrc=s=16x16:d=0.04", "-f", "null", "-"]  # fmt: skip
    with sandbox.FencedProcess(busy, cwd=scratch / "out", home=scratch, seconds=120,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as waited:  # fmt: skip
        assert waited.wait() == 0
    with sandbox.FencedProcess(idle, cwd=scratch / "out", home=scratch, seconds=120,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as polled:  # fmt: skip
        wait_until(lambda: polled.poll() is not None, seconds=60, what="ffmpeg to end")
    # 120 frames of x264 at 360p take a good fraction of a second of CPU; 1 tiny frame none.
    assert waited.cpu_seconds > 0.2
    assert 0 < polled.cpu_seconds < waited.cpu_seconds / 4
