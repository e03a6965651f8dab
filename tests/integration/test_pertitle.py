"""Per-title ladders against moto's AWS with real ffmpeg and libvmaf: probes choose a
cheaper ladder for an easy clip and drop a rung that adds nothing, the plan shows why,
bad asks are 400s, and a fixed ladder runs as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.jobs import records as jobs
from chalicelib.jobs import task_lifecycle
from chalicelib.presets import catalog as presets
from chalicelib.presets import pertitle
from chalicelib.store.models import Job
from tests.conftest import ADMIN
from tests.integration.test_graph import Drain, ended, upload
from tests.media import generate

pytestmark = pytest.mark.slow
HEIGHTS = (360, 240, 180)
FIXED = {
    "video": {"codec": "h264", "preset": "veryfast"},
    "renditions": [
        {"height": 360, "bitrate": "500k"},
        {"height": 240, "bitrate": "300k"},
        {"height": 180, "bitrate": "150k"},
    ],
    "audio": {"codec": "aac", "bitrate": "64k", "channels": 2},
    "segment_seconds": 1,
    "packaging": ["hls", "mp4"],
}
PER_TITLE = {**FIXED, "mode": "per-title", "target_vmaf": 93,
             "renditions": [{"height": h} for h in HEIGHTS]}  # fmt: skip


@pytest.fixture(scope="module")
def easy(tmp_path_factory) -> Path:
    """A slow, soft gradient made at 160x90 and scaled up: as good at 180p as at 360p."""
    path = tmp_path_factory.mktemp("pertitle") / "easy.mp4"
    return generate(
        path,
        "-f", "lavfi", "-i", "gradients=size=160x90:rate=30:speed=0.002,scale=640:360:flags=bicubic",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
    )  # fmt: skip


def _preset(name: str, ladder: dict) -> None:
    data = json.dumps({"ladder": ladder})
    presets.create_preset(presets.PresetInput(name=name, data=data, output="master.m3u8"))


def _run(preset: str, source: str) -> Job:
    job = jobs.create_job(owner=ADMIN[0], preset=preset, source=source, dest=f"s3:///{preset}/")
    Drain().until(ended(job), workers=2)
    done = Job.get(job.id)
    assert done.status == "completed", done.error
    return done


def _video_kbps(job: Job) -> dict[str, float]:
    return {o["rendition"]: o["bit_rate"] / 1000 for o in job.outputs
            if o.get("kind") == "video" and o.get("rendition")}  # fmt: skip


def test_a_per_title_ladder_spends_fewer_bits_on_an_easy_clip_and_drops_a_rung_that_adds_nothing(
    aws, chunky, easy
):
    source = upload(easy)
    _preset("fixed", FIXED)
    _preset("per-title", PER_TITLE)
    fixed = _video_kbps(_run("fixed", source))
    done = _run("per-title", source)
    chosen = _video_kbps(done)
    assert set(fixed) == {f"{h}p" for h in HEIGHTS}
    assert 0 < len(chosen) < len(fixed)  # a rung that adds nothing is not encoded
    assert sum(chosen.values()) < sum(fixed.values())
    view = jobs.public_view(done)["plan"]["ladder"]
    assert view["mode"] == "per-title" and view["target_vmaf"] == 93
    assert {(p["height"], p["crf"]) for p in view["points"]} == {
        (h, crf) for h in HEIGHTS for crf in (22, 31)
    }
    for point in view["points"]:
        assert {"width", "height", "kbps", "vmaf", "crf"} <= set(point)
        assert point["kbps"] > 0 and 0 <= point["vmaf"] <= 100
    assert sorted(c["name"] for c in view["chosen"]) == sorted(chosen)
    assert all({"name", "width", "height", "kbps", "vmaf"} <= set(c) for c in view["chosen"])
    top = view["chosen"][0]
    # Reached, or (no probed CRF reaches it) the most quality allowed: the tallest at the
    # lowest CRF the choice may use.
    assert top["vmaf"] >= 93 or top["crf"] == min(pertitle.PROBE_CRFS) - pertitle.EXTRAPOLATE_CRF
    assert 0 < view["probe_cpu_seconds"] <= float(done.cpu_seconds)
    encodes = [t for t in task_lifecycle.tasks_of(int(done.id), 1) if t.task_kind == "encode"]
    assert {tuple(t.renditions or [t.rendition]) for t in encodes} <= {tuple(chosen), *(
        (name,) for name in chosen)}  # fmt: skip


def test_a_fixed_ladder_plans_as_before_with_no_ladder_on_its_plan(aws, chunky, easy):
    _preset("fixed", FIXED)
    done = _run("fixed", upload(easy))
    assert "ladder" not in jobs.public_view(done)["plan"]
    assert len(_video_kbps(done)) == 3


@pytest.mark.parametrize(
    ("ladder", "message"),
    [
        ({**PER_TITLE, "target_vmaf": 40}, "50 to 99"),
        ({**PER_TITLE, "target_vmaf": 100}, "50 to 99"),
        ({**FIXED, "target_vmaf": 90}, "per-title"),
    ],
)
def test_bad_per_title_presets_are_400s(api, ladder, message):
    token = api.login(*ADMIN)
    body = {"name": "bad", "data": json.dumps({"ladder": ladder}), "output": "master.m3u8"}
    r = api.call("POST", "/api/presets", body, token=token)
    assert r.status_code == 400 and message in r.data["message"], r.data
    not_a_ladder = {"name": "bad2", "output": "a.mp4",
                    "data": json.dumps({"raw": ["-c:v libx264"], "mode": "per-title",
                                        "target_vmaf": 95})}  # fmt: skip
    r = api.call("POST", "/api/presets", not_a_ladder, token=token)
    assert r.status_code == 400 and "ladder presets" in r.data["message"], r.data
