"""Quality, the pure parts: what may be asked, the plan's measurement tasks, libvmaf's log
read back, and the summary of a rendition from its chunks."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from chalicelib.errors import InvalidInput
from chalicelib.graph import measures
from chalicelib.graph.plan import Kind, Limits, Plan, Source, plan
from chalicelib.media import argv, quality
from chalicelib.presets import quality as asked
from chalicelib.presets.catalog import LADDER_SEEDS
from chalicelib.presets.recipe import VideoRecipe
from chalicelib.presets.spec import parse_preset_data
from chalicelib.presets.work import Work

FPS = Fraction(30)
LADDER = Work(renditions=("720p", "360p"), cost=2.0, rendition_costs=(1.5, 0.5),
              chunk_safe=True, gop_frames=120, graph=True)  # fmt: skip
SOURCE = Source(duration=100, fps=FPS, height=720)


# --- what may be asked ------------------------------------------------------------------


def test_an_unknown_metric_is_refused_naming_every_allowed_one():
    with pytest.raises(InvalidInput) as refused:
        asked.check({"metrics": ["vmaf", "butteraugli"]})
    assert "'butteraugli'" in refused.value.message
    assert "vmaf, psnr, ssim" in refused.value.message
    with pytest.raises(InvalidInput):
        asked.check({"metrics": "vmaf"})
    with pytest.raises(InvalidInput):
        asked.check({"metrics": ["vmaf"], "model": "x"})
    assert asked.check({"metrics": ["ssim", "vmaf", "ssim"]}) == ("ssim", "vmaf")
    assert asked.check(None) == ()


def test_a_preset_may_ask_for_quality_and_an_audio_only_output_may_not():
    ladder = json.loads(LADDER_SEEDS[0][2])
    spec = parse_preset_data(json.dumps({**ladder, "quality": {"metrics": ["vmaf"]}}))
    assert spec.ladder and spec.quality == ("vmaf",)
    with pytest.raises(InvalidInput, match="allowed metrics are vmaf, psnr, ssim"):
        parse_preset_data(json.dumps({**ladder, "quality": {"metrics": ["vmaf2"]}}))
    raw = parse_preset_data('{"raw": ["-c:a aac", "-vn"], "quality": {"metrics": ["psnr"]}}')
    with pytest.raises(InvalidInput, match="audio only"):
        asked.check_video(raw.quality, raw.args, "sound.m4a", raw.ladder)
    asked.check_video((), raw.args, "sound.m4a", raw.ladder)  # not asked: nothing to refuse


def test_a_jobs_own_quality_wins_over_its_presets_and_an_empty_list_turns_it_off():
    data = '{"raw": ["-c:v libx264"], "quality": {"metrics": ["vmaf"]}}'
    assert asked.wanted(None, data) == ("vmaf",)
    assert asked.wanted({"quality": {"metrics": ["psnr"]}}, data) == ("psnr",)
    assert asked.wanted({"quality": {"metrics": []}}, data) == ()
    assert asked.wanted({"parallel": "auto"}, '{"raw": ["-c:v libx264"]}') == ()


# --- the plan ---------------------------------------------------------------------------


def test_quality_off_leaves_the_plan_exactly_as_it_was():
    p = plan(SOURCE, LADDER)
    assert measures.with_measures(p, (), SOURCE, Limits()) is p
    assert measures.restore(Plan.from_record(p.record())).tasks == p.tasks


def test_each_chunk_and_rendition_is_measured_after_the_encode_that_makes_it():
    p = measures.with_measures(plan(SOURCE, LADDER), ("vmaf",), SOURCE, Limits())
    encodes = [t for t in p.tasks if t.kind is Kind.ENCODE]
    measured = [t for t in p.tasks if t.kind is Kind.QUALITY]
    assert len(measured) == len(p.chunks) * 2
    assert {t.id for t in measured} == {
        measures.task_id(c.index, r) for c in p.chunks for r in ("720p", "360p")
    }
    for t in measured:
        encode = p.task(measures.after(p, t) or "")
        assert encode.chunk == t.chunk and t.rendition in encode.renditions
        assert t in measures.waiting_on(p, encode.id)
    assert p.tasks[-1].kind is Kind.ASSEMBLE  # the measurements count in the fan-in
    assert p.record()["tasks_total"] == len(encodes) + len(measured) + 2  # audio, assemble
    # The stored plan brings them back, weights and all, without listing them.
    again = measures.restore(Plan.from_record(json.loads(json.dumps(p.record()))))
    assert again.tasks == p.tasks


def test_a_measured_plan_costs_more_and_takes_one_measurement_longer():
    p = plan(SOURCE, LADDER)
    q = measures.with_measures(p, ("vmaf", "psnr"), SOURCE, Limits())
    assert q.estimate.cost_usd > p.estimate.cost_usd
    assert q.estimate.seconds > p.estimate.seconds
    chunk = q.chunks[0]
    weight = q.task(measures.task_id(0, "720p")).weight
    assert weight == pytest.approx((chunk.end or 0) * measures.MEASURE_RATE_720P)


def test_a_source_without_video_gets_no_measurement():
    audio = Source(duration=10, fps=None, height=None, has_video=False)
    p = plan(audio, Work(renditions=("a.m4a",), cost=0.1, chunk_safe=False))
    assert measures.with_measures(p, ("vmaf",), audio, Limits()) is p


# --- argv and the log -------------------------------------------------------------------


def test_a_chunks_reference_is_trimmed_exactly_as_its_encode_was():
    video = VideoRecipe("360p", 360, "libx264", ("-c:v", "libx264"), ("scale=-2:360",))
    cut = dict(start=2.4, end=4.8, fps=FPS, source_start=1.5)
    encode = argv.encode_chunk(Path("p.mkv"), Path("o.mp4"), video, **cut)
    measure = quality.measure_argv(Path("o.mp4"), Path("p.mkv"), (640, 360),
                                   trim=(2.4, 4.8, FPS, 1.5))  # fmt: skip
    trim = encode[encode.index("-vf") + 1].split(",")[0]
    graph = measure[measure.index("-filter_complex") + 1]
    assert f"[1:v:0]{trim},setpts=PTS-STARTPTS" in graph
    assert "scale=640:360:flags=bicubic" in graph and "model=version=vmaf_v0.6.1" in graph
    assert "-copyts" in measure  # the piece keeps the source's timestamps, as for the encode


def _log(frames: list[tuple[float, float, float]]) -> str:
    return json.dumps({"frames": [
        {"frameNum": i, "metrics": {"vmaf": v, "psnr_y": p, "float_ssim": s, "motion2": 0}}
        for i, (v, p, s) in enumerate(frames)
    ]})  # fmt: skip


def test_libvmafs_log_gives_each_asked_metric_frame_by_frame():
    series = quality.parse_log(_log([(90.1234, 40.5, 0.98), (80.0, 38.0, 0.97)]), ("vmaf", "ssim"))
    assert series == {"vmaf": [90.123, 80.0], "ssim": [0.98, 0.97]}
    with pytest.raises(quality.QualityFailed):
        quality.parse_log("not json")
    with pytest.raises(quality.QualityFailed):
        quality.parse_log(json.dumps({"frames": []}))


def test_chunks_aggregate_to_the_whole_renditions_summary():
    rng = random.Random(7)
    frames = [rng.uniform(60, 99) for _ in range(500)]
    whole = quality.summary(frames)
    chunks = [quality.chunk_result({"vmaf": frames[i : i + 120]}) for i in range(0, 500, 120)]
    summary, document = quality.aggregate("720p", chunks)
    assert summary["status"] == "ok" and summary["frames"] == 500 and summary["chunks"] == 5
    assert summary["vmaf"] == whole
    assert document["series"]["vmaf"] == frames and document["frames"] == 500
    assert whole["min"] <= whole["p1"] <= whole["p5"] <= whole["harmonic_mean"] <= whole["mean"]


def test_the_summary_matches_libvmafs_own_pooling():
    # libvmaf pooled these frames as mean 85.897189, harmonic mean 85.742948 (its log).
    values = [79.12113, 90.380291, 73.417699, 88.5, 91.2, 86.7]
    hm = len(values) / sum(1 / (v + 1) for v in values) - 1
    assert quality.harmonic_mean(values) == pytest.approx(hm)
    assert quality.percentile([1, 2, 3, 4, 5], 50) == 3
    assert quality.percentile([0, 10], 5) == pytest.approx(0.5)


def test_one_failed_chunk_fails_its_renditions_quality_with_the_reason():
    ok = quality.chunk_result({"vmaf": [90.0, 91.0]})
    summary, document = quality.aggregate("360p", [ok, quality.failed("chunk 1: odd size")])
    assert summary == {"status": "failed", "reason": "chunk 1: odd size"} and document == {}


def test_quality_lands_on_the_renditions_mp4_else_its_playlist():
    records = [
        {"key": "out/720p/index.m3u8", "kind": "playlist", "rendition": "720p"},
        {"key": "out/720p.mp4", "kind": "video", "rendition": "720p"},
        {"key": "out/360p/index.m3u8", "kind": "playlist", "rendition": "360p"},
        {"key": "out/quality/720p.json", "kind": "quality", "rendition": "720p"},
        {"key": "out/clip.mp4", "width": 640},
    ]
    quality.attach(records, {"720p": {"status": "ok"}, "360p": {"status": "ok"},
                             "clip.mp4": {"status": "failed"}})  # fmt: skip
    assert [("quality" in r) for r in records] == [False, True, True, False, True]


def test_the_clis_quality_column_reads_vmaf_psnr_ssim_or_why_not():
    from openencoder_cli.views import quality_cell

    figures = {"mean": 91.55, "harmonic_mean": 91.4, "min": 84.1, "p1": 85.0, "p5": 87.93}
    measured = {"status": "ok", "vmaf": figures, "ssim": {**figures, "mean": 0.98123}}
    assert quality_cell({"quality": measured}) == "VMAF 91.5 (p5 87.9), SSIM 0.9812"
    failed = {"quality": {"status": "failed", "reason": "chunk 2: odd size"}}
    assert quality_cell(failed) == "failed: chunk 2: odd size"
    assert quality_cell({"key": "out/360p/"}) == ""


def test_the_clis_outputs_table_gains_a_quality_column_only_for_a_measured_job(monkeypatch):
    from openencoder_cli import output, views

    shown: list[list[str]] = []
    monkeypatch.setattr(output, "table", lambda columns, rows, title=None: shown.append(columns))
    plain = [{"name": "clip.mp4", "kind": "video", "width": 640, "height": 360}]
    views.show_outputs(plain)
    views.show_outputs([{**plain[0], "quality": {"status": "failed", "reason": "odd size"}}])
    assert shown[0] == ["name", "kind", "resolution", "bitrate", "size", "duration"]
    assert shown[1] == [*shown[0], "quality"]
