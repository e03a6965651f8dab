"""Quality per rendition against moto's AWS with real ffmpeg and libvmaf: measured by chunk in
parallel with the encodes, agreeing with one whole-file run; a one-file job measured whole;
a failed measurement leaves the outputs and completes the job; bad asks are 400s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.delivery import deliveries
from chalicelib.errors import InvalidInput
from chalicelib.graph.runner import TaskRun
from chalicelib.jobs import records as jobs
from chalicelib.jobs import task_lifecycle
from chalicelib.media import quality, steps
from chalicelib.media.steps import FfmpegKilled
from chalicelib.presets import catalog as presets
from chalicelib.store import messages, queues
from chalicelib.store.models import Job
from tests.conftest import ADMIN
from tests.integration.test_graph import (
    Drain,
    _started_graph,
    ended,
    fetch,
    output_keys,
    upload,
)

pytestmark = pytest.mark.slow
FRAMES = 216  # the shared mezzanine (tests/integration/conftest.py): 7.2 s of 640x360 at 30 fps
ALL = {"metrics": ["vmaf", "psnr", "ssim"]}
LADDER = {
    "ladder": {
        "video": {"codec": "h264", "preset": "veryfast"},
        "renditions": [{"height": 360, "bitrate": "500k"}, {"height": 180, "bitrate": "150k"}],
        "audio": {"codec": "aac", "bitrate": "64k", "channels": 2},
        "segment_seconds": 1,
        "packaging": ["hls", "mp4"],
    },
    "quality": ALL,
}


def _ladder() -> None:
    presets.create_preset(
        presets.PresetInput(name="measured", data=json.dumps(LADDER), output="master.m3u8")
    )


def _job(preset: str, source: str, **options) -> Job:
    return jobs.create_job(owner=ADMIN[0], preset=preset, source=source, dest="s3:///out/",
                           options=options or None)  # fmt: skip


def _whole(key: str, source: Path, folder: Path) -> dict[str, list[float]]:
    """One libvmaf run of the published rendition against the whole source."""
    folder.mkdir(parents=True, exist_ok=True)
    rendition = fetch(key, folder / Path(key).name)
    return quality.measure(rendition, source, (640, 360), folder / "whole", steps.local_run)


def test_a_chunked_ladders_quality_agrees_with_one_whole_file_libvmaf_run(
    aws, chunky, mezzanine, tmp_path, capsys
):
    _ladder()
    job = _job("measured", upload(mezzanine))
    Drain().until(ended(job), workers=2)
    done = Job.get(job.id)
    assert done.status == "completed", done.error
    kinds = {t.task_kind for t in task_lifecycle.tasks_of(int(job.id), 1)}
    assert "quality" in kinds
    measured = [t for t in task_lifecycle.tasks_of(int(job.id), 1) if t.task_kind == "quality"]
    assert len(measured) == 3 * 2  # three chunks, two renditions
    view = jobs.public_view(done)
    by_name = {o["name"]: o for o in view["outputs"]}
    for rendition in ("360p", "180p"):
        result = by_name[f"{rendition}.mp4"]["quality"]
        assert result["status"] == "ok" and result["chunks"] == 3
        assert result["frames"] == FRAMES
        for metric in ("vmaf", "psnr", "ssim"):
            figures = result[metric]
            assert figures["min"] <= figures["p1"] <= figures["p5"] <= figures["mean"]
        assert view["quality"][rendition] == result
        whole = _whole(f"out/{rendition}.mp4", mezzanine, tmp_path / rendition)
        mean = sum(whole["vmaf"]) / len(whole["vmaf"])
        with capsys.disabled():
            print(f"\n{rendition}: chunked VMAF {result['vmaf']['mean']:.3f} over "
                  f"{result['frames']} frames, whole {mean:.3f} over {len(whole['vmaf'])}")  # fmt: skip
        assert len(whole["vmaf"]) == result["frames"]
        assert abs(mean - result["vmaf"]["mean"]) <= 0.5
        # The per-frame series is an output of its own, small and readable.
        series = json.loads(fetch(f"out/quality/{rendition}.json", tmp_path / "s.json").read_text())
        assert len(series["series"]["vmaf"]) == FRAMES and series["metrics"] == {
            m: result[m] for m in ("vmaf", "psnr", "ssim")
        }
        assert by_name[f"quality/{rendition}.json"]["kind"] == "quality"
    payload = deliveries.job_payload(done, "job.completed", {})
    assert set(payload["quality"]) == {"360p", "180p"}
    assert not any(k.startswith("out/_") for k in output_keys())


def test_a_failed_measurement_marks_that_renditions_quality_failed_and_the_job_completes(
    aws, chunky, mezzanine, monkeypatch
):
    _ladder()
    monkeypatch.setattr(quality, "MODEL", "version=vmaf_no_such_model")
    job = _job("measured", upload(mezzanine))
    Drain().until(ended(job), workers=2)
    done = Job.get(job.id)
    assert done.status == "completed", done.error
    by_name = {o["name"]: o for o in jobs.public_view(done)["outputs"]}
    for rendition in ("360p", "180p"):
        result = by_name[f"{rendition}.mp4"]["quality"]
        assert result["status"] == "failed" and "chunk 0" in result["reason"]
        assert by_name[f"{rendition}.mp4"]["size"] > 0  # the encode stands, whole
    assert {"out/master.m3u8", "out/360p.mp4", "out/180p.mp4"} <= output_keys()
    assert not any(k.startswith("out/quality/") for k in output_keys())


def test_a_single_output_job_is_measured_as_one_chunk_and_quality_off_changes_nothing(
    aws, scratch, mezzanine
):
    source = upload(mezzanine)
    job = _job("h264_baseline_360p_600", source, quality={"metrics": ["vmaf", "psnr"]})
    Drain().until(ended(job))
    done = Job.get(job.id)
    assert done.status == "completed", done.error
    (video,) = [o for o in done.outputs if o.get("width")]
    result = video["quality"]
    assert result["status"] == "ok" and result["frames"] == FRAMES and result["chunks"] == 1
    assert set(result) >= {"vmaf", "psnr"} and "ssim" not in result
    plain = _job("h264_baseline_360p_600", source)
    Drain().until(ended(plain))
    off = Job.get(plain.id)
    assert off.status == "completed"
    assert not any("quality" in o for o in off.outputs)
    assert "quality" not in jobs.public_view(off)
    assert [o["key"] for o in off.outputs] == [video["key"]]  # no series file either


def test_an_unknown_metric_and_quality_of_audio_only_are_refused(aws, api):
    body = {"preset": "h264_baseline_360p_600", "source": "s3:///src/x.mp4", "dest": "s3:///o/"}
    token = api.login(*ADMIN)
    r = api.call("POST", "/api/jobs", {**body, "quality": {"metrics": ["vmaf", "lpips"]}},
                 token=token)  # fmt: skip
    assert r.status_code == 400
    assert "'lpips'" in r.data["message"] and "vmaf, psnr, ssim" in r.data["message"]
    presets.create_preset(presets.PresetInput(name="sound", data='{"raw": ["-vn", "-c:a aac"]}',
                                              output="sound.m4a"))  # fmt: skip
    with pytest.raises(InvalidInput, match="audio only"):
        _job("sound", "s3:///src/x.mp4", quality=ALL)
    with pytest.raises(InvalidInput, match="audio only"):
        presets.create_preset(presets.PresetInput(
            name="sound2", data=json.dumps({"raw": ["-vn", "-c:a aac"], "quality": ALL}),
            output="sound.m4a"))  # fmt: skip


def test_measurements_wait_for_their_encode_and_a_redelivered_encode_sends_any_not_sent(
    aws, chunky, mezzanine, monkeypatch
):
    job, bodies = _started_graph("h264_baseline_360p_600", upload(mezzanine), quality=ALL)
    sent = [messages.parse(b) for b in bodies]
    assert not any(m.task.startswith("quality-") for m in sent)  # none before its encode
    waiting = [t for t in task_lifecycle.tasks_of(int(job.id), 1) if t.task_kind == "quality"]
    assert len(waiting) == 3 and {t.status for t in waiting} == {"waiting"}
    first = next(m for m in sent if m.task.startswith("encode-0000"))
    # Its host dies after the encode's done is recorded, before it releases the measurement.
    monkeypatch.setattr(TaskRun, "_release_measures", lambda self, again=False: None)
    assert TaskRun(first, worker_id="dies").run().result.value == "completed"
    measure = next(t for t in waiting if t.chunk == 0)
    assert task_lifecycle.task(int(job.id), 1, measure.task_id).status == "waiting"
    monkeypatch.undo()
    assert TaskRun(first, worker_id="again").run().result.value == "skipped"
    assert task_lifecycle.task(int(job.id), 1, measure.task_id).status == "queued"
    for m in sent:
        if m != first:
            queues.send("encode", m)
    Drain().until(ended(job), workers=2)
    done = Job.get(job.id)
    assert done.status == "completed", done.error
    (video,) = [o for o in done.outputs if o.get("width")]
    assert video["quality"]["status"] == "ok" and video["quality"]["frames"] == FRAMES


def test_a_measurement_killed_on_every_try_fails_its_quality_not_the_job(
    aws, chunky, mezzanine, monkeypatch
):
    monkeypatch.setenv("OE_TASK_RETRIES", "0")  # the first kill spends the tries

    def killed(*args, **kwargs):
        raise FfmpegKilled(9, "Killed")

    monkeypatch.setattr(quality, "measure", killed)
    job = _job("h264_baseline_360p_600", upload(mezzanine), quality=ALL)
    Drain().until(ended(job), workers=2)
    done = Job.get(job.id)
    assert done.status == "completed", done.error
    (video,) = [o for o in done.outputs if o.get("width")]
    assert video["quality"]["status"] == "failed"
    assert "killed by signal 9" in video["quality"]["reason"]
