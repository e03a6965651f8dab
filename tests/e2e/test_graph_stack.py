"""A chunked job on the local stack over HTTP: several handler invocations at once, and an
output that matches a monolithic encode of the same source."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from pathlib import Path

import boto3
import pytest
import requests

from chalicelib.media.codecs import codec_string
from chalicelib.media.probe import ffmpeg_exe, probe
from ops.local_stack import running
from tests.media import generate

pytestmark = pytest.mark.slow
SECONDS = 12
PRESET = "h264_baseline_360p_600"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("graph-stack")
    source = generate(
        state / "mezz.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=7:allf=t:all_seed=42",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-g", "50",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
    )  # fmt: skip
    env = {"OE_BCRYPT_ROUNDS": "4", "OE_LOCAL_CONCURRENCY": "2", "OE_CHUNK_MIN_SECONDS": "0",
           "OE_CHUNK_SECONDS": "3"}  # fmt: skip
    with (state / "stack.log").open("w") as log, running(state, output=log, **env) as (_, facts):
        s3 = boto3.client("s3", endpoint_url=facts["aws_endpoint"], region_name=facts["region"],
                          aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
        s3.upload_file(str(source), facts["buckets"]["input"], "src/mezz.mp4")
        http = requests.Session()
        login = http.post(f"{facts['api']}/login", json=facts["admin"], timeout=30)
        http.headers["Authorization"] = f"Bearer {login.json()['token']}"
        yield {"facts": facts, "s3": s3, "http": http, "state": state}


def run_job(stack, dest: str, **extra) -> dict:
    api, http = stack["facts"]["api"], stack["http"]
    body = {"preset": PRESET, "source": "s3:///src/mezz.mp4", "dest": dest, **extra}
    created = http.post(f"{api}/jobs", json=body, timeout=30)
    assert created.status_code == 200, created.text
    job_id = created.json()["job"]["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = http.get(f"{api}/jobs/{job_id}", timeout=30).json()["job"]
        if job["status"] in ("completed", "error", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end: {job}")


def fetch(stack, key: str, path: Path) -> Path:
    stack["s3"].download_file(stack["facts"]["buckets"]["output"], key, str(path))
    return path


def frames(path: Path) -> int:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                             "-f", "null", "-"], capture_output=True, text=True, check=True)  # fmt: skip
    return int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1])


def test_a_chunked_job_over_http_matches_a_monolithic_encode(stack, tmp_path):
    api, http = stack["facts"]["api"], stack["http"]
    chunked = run_job(stack, "s3:///chunked/")
    assert chunked["status"] == "completed", chunked["error"]
    assert chunked["plan"]["mode"] == "chunked" and chunked["plan"]["chunks"] == 5
    assert chunked["plan"]["tasks_done"] == chunked["plan"]["tasks_total"] == 7
    tasks = http.get(f"{api}/jobs/{chunked['id']}/tasks", timeout=30).json()
    assert tasks["count"] == 7
    assert [t["kind"] for t in tasks["items"]] == ["encode"] * 5 + ["audio", "assemble"]
    assert {t["status"] for t in tasks["items"]} == {"done"}
    first = tasks["items"][0]
    assert set(first) >= {"id", "kind", "chunk", "rendition", "status", "attempt", "started",
                          "finished", "progress"}  # fmt: skip
    assert first["chunk"] == 0 and first["attempt"] == 1 and first["started"].endswith("Z")
    # Encodes ran two at a time: some pair of encode tasks overlapped.
    spans = sorted((t["started"], t["finished"]) for t in tasks["items"] if t["kind"] == "encode")
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))

    mono = run_job(stack, "s3:///mono/", parallel="off")
    assert mono["status"] == "completed" and mono["plan"]["mode"] == "single"
    assert http.get(f"{api}/jobs/{mono['id']}/tasks", timeout=30).json()["count"] == 0
    output = f"{PRESET}.mp4"
    got = fetch(stack, f"chunked/{output}", tmp_path / "chunked.mp4")
    want = fetch(stack, f"mono/{output}", tmp_path / "mono.mp4")
    a, b = probe(want), probe(got)
    assert codec_string(got) == codec_string(want)  # codec, profile and level
    assert (b.video.codec, b.video.profile) == (a.video.codec, a.video.profile)
    assert (b.video.width, b.video.height) == (a.video.width, a.video.height)
    assert frames(got) == frames(want) == SECONDS * 30
    assert abs(b.duration - a.duration) <= 1 / 30
