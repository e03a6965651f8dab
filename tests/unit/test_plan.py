"""The planner is pure: probe facts + what the preset asks → chunks, tasks, route, estimate."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.graph.plan import Kind, Limits, Mode, Options, Plan, Source, plan, progress
from chalicelib.presets.catalog import SEEDED
from chalicelib.presets.ladder import Ladder
from chalicelib.presets.recipe import ladder_recipe, single_recipe
from chalicelib.presets.spec import parse_preset_data
from chalicelib.presets.work import Work

FPS30 = Fraction(30)


def work(**kw) -> Work:
    base = dict(renditions=("main.mp4",), cost=0.5, chunk_safe=True, gop_frames=72)
    return Work(**(base | kw))


def source(seconds: float, fps: Fraction | None = FPS30, height: int = 720, **kw) -> Source:
    return Source(duration=seconds, fps=fps, height=height, **kw)


def test_chunk_seams_fall_on_multiples_of_the_gop_about_chunk_seconds_apart():
    p = plan(source(120), work(gop_frames=72), limits=Limits(chunk_seconds=20))
    assert p.mode == Mode.CHUNKED
    # 20 s at 30 fps is 600 frames: the largest multiple of 72 under it is 576 (19.2 s).
    assert [c.first_frame for c in p.chunks] == [0, 576, 1152, 1728, 2304, 2880, 3456]
    assert all(c.first_frame % 72 == 0 for c in p.chunks)
    assert p.chunks[-1].end_frame is None and p.chunks[-1].end is None
    assert [c.end_frame for c in p.chunks[:-1]] == [c.first_frame for c in p.chunks[1:]]
    assert p.chunks[1].start == pytest.approx(19.2)


def test_the_last_seam_leaves_at_least_one_gop_after_it():
    # 3600 frames; seams every 600; a seam at 3600 - 0 would leave nothing.
    p = plan(source(120), work(gop_frames=60), limits=Limits(chunk_seconds=20))
    assert [c.first_frame for c in p.chunks] == [0, 600, 1200, 1800, 2400, 3000]
    p = plan(source(120.5), work(gop_frames=60), limits=Limits(chunk_seconds=20))
    assert p.chunks[-1].first_frame == 3000  # 15 frames after 3600 are not a chunk of their own


def test_fractional_frame_rates_cut_on_frames_not_seconds():
    ntsc = Fraction(30000, 1001)
    p = plan(source(100, fps=ntsc), work(gop_frames=120), limits=Limits(chunk_seconds=20))
    assert [c.first_frame for c in p.chunks] == [0, 480, 960, 1440, 1920, 2400]
    assert p.chunks[1].start == pytest.approx(480 * 1001 / 30000)


def test_tasks_are_chunk_by_rendition_plus_audio_thumbnails_per_chunk_and_one_assemble():
    w = work(renditions=("720p", "360p"), gop_frames=60, thumbnails=True, graph=True)
    p = plan(source(60), w, limits=Limits(chunk_seconds=20))
    kinds = [t.kind for t in p.tasks]
    assert kinds.count(Kind.ENCODE) == 3 * 2
    assert kinds.count(Kind.AUDIO) == 1
    # Thumbnails come from each chunk's piece: no task decodes the whole timeline.
    thumbnails = [t for t in p.tasks if t.kind == Kind.THUMBNAILS]
    assert [(t.id, t.chunk) for t in thumbnails] == [
        ("thumbnails-0000", 0), ("thumbnails-0001", 1), ("thumbnails-0002", 2)
    ]  # fmt: skip
    assert kinds[-1] == Kind.ASSEMBLE and kinds.count(Kind.ASSEMBLE) == 1
    assert len({t.id for t in p.tasks}) == len(p.tasks)
    assert len(p.tasks) == 11 and len(p.chunks) == 3
    assert len(p.renditions) == 2


def test_a_source_without_audio_gets_no_audio_task():
    p = plan(source(90, has_audio=False), work())
    assert Kind.AUDIO not in [t.kind for t in p.tasks]


@pytest.mark.parametrize(
    "why, src, w, options, mode",
    [
        ("short source", source(30), work(), Options(), Mode.SINGLE),
        ("long and chunk-safe", source(90), work(), Options(), Mode.CHUNKED),
        ("exactly the minimum", source(60), work(), Options(), Mode.CHUNKED),
        ("parallel off, fits", source(90), work(), Options(parallel="off"), Mode.SINGLE),
        ("not chunk-safe, fits", source(300), work(chunk_safe=False), Options(), Mode.SINGLE),
        ("not chunk-safe, too long", source(3600), work(chunk_safe=False), Options(), Mode.DROPLET),
        ("parallel off, too long", source(3600), work(), Options(parallel="off"), Mode.DROPLET),
        ("no frame rate", source(600, fps=None), work(), Options(), Mode.SINGLE),
        ("audio only", source(600, has_video=False), work(), Options(), Mode.SINGLE),
    ],
)
def test_routing(why, src, w, options, mode):
    assert plan(src, w, options).mode == mode, why


def test_priority_cost_prefers_droplets_only_when_configured_and_cheaper():
    long = source(1800)
    assert plan(long, work(), Options(priority="cost")).mode == Mode.CHUNKED  # no droplets
    cheap = Limits(droplets=True, droplet_usd_per_hour=0.01)
    p = plan(long, work(), Options(priority="cost"), cheap)
    assert p.mode == Mode.DROPLET and len(p.chunks) == 1
    dear = Limits(droplets=True, droplet_usd_per_hour=50.0)
    assert plan(long, work(), Options(priority="cost"), dear).mode == Mode.CHUNKED
    assert plan(long, work(), Options(priority="speed"), cheap).mode == Mode.CHUNKED


def test_the_estimate_of_a_chunked_plan_is_the_critical_path_not_the_sum():
    w = work(cost=1.0)
    chunked = plan(source(600), w)
    single = plan(source(600), w, Options(parallel="off"))
    assert chunked.estimate.seconds < single.estimate.seconds / 10
    assert chunked.estimate.cost_usd > 0 and single.estimate.seconds > 600


def test_a_plan_survives_being_stored_and_read_back():
    p = plan(source(125, fps=Fraction(24000, 1001)), work(renditions=("a", "b"), graph=True))
    stored = json.loads(json.dumps(p.record()))
    assert Plan.from_record(stored) == p


def test_progress_is_the_weighted_share_of_finished_tasks():
    p = plan(source(120), work())
    encodes = [t.id for t in p.tasks if t.kind == Kind.ENCODE]
    assert progress(p, set()) == 0
    assert 0 < progress(p, set(encodes[:1])) < progress(p, set(encodes)) < 100
    assert progress(p, {t.id for t in p.tasks}) == 100


# --- what presets ask: chunk safety and renditions ------------------------------


def test_the_seeded_h264_presets_are_chunk_safe_and_the_vp9_one_is_not():
    for _, name, data, output in SEEDED:
        spec = parse_preset_data(data)
        recipe = single_recipe(spec.args, output, 1080)
        if name.startswith("webm"):
            assert not recipe.chunk_safe and "GOP" in recipe.why_not
        else:
            assert recipe.chunk_safe, (name, recipe.why_not)
            assert recipe.videos[0].gop_frames == 72
            assert "-y" not in recipe.videos[0].args and recipe.audio_args == ("-c:a", "aac")


@pytest.mark.parametrize(
    "raw, why",
    [
        (["-c:v libx264", "-b:v 1M"], "GOP"),
        (["-c:v libx264", "-g 48", "-keyint_min 48", "-sc_threshold 0", "-vf yadif"], "yadif"),
        (["-c:v libx264", "-g 48", "-keyint_min 48", "-sc_threshold 0", "-r 24"], "-r"),
        (["-c:v libx264", "-x264opts keyint=48:min-keyint=48:scenecut=0", "-t 10"], "-t"),
        (["-c:v libx264", "-x264opts keyint=48:min-keyint=24:scenecut=0"], "GOP"),
    ],
)
def test_presets_that_need_the_whole_timeline_are_not_chunk_safe(raw, why):
    spec = parse_preset_data(json.dumps({"raw": raw}))
    recipe = single_recipe(spec.args, "out.mp4", 720)
    assert not recipe.chunk_safe and why in recipe.why_not


def test_two_pass_structured_presets_are_not_chunk_safe():
    recipe = single_recipe(["-c:v", "libx264"], "o.mp4", 720, two_pass=True)
    assert not recipe.chunk_safe and "two-pass" in recipe.why_not


LADDER = {
    "video": {"codec": "h264", "preset": "veryfast"},
    "renditions": [
        {"height": 1080, "bitrate": "6000k", "profile": "high"},
        {"height": 720, "bitrate": "3000k", "profile": "main"},
        {"height": 360, "bitrate": "600k", "profile": "baseline"},
    ],
    "segment_seconds": 4,
    "packaging": ["hls", "dash", "mp4"],
    "thumbnails": {"every_seconds": 5, "width": 320, "sprite": True},
}


def test_renditions_taller_than_the_source_are_skipped_never_upscaled():
    ladder = Ladder.model_validate(LADDER)
    assert [r.height for r in ladder.renditions_for(720)] == [720, 360]
    assert [r.height for r in ladder.renditions_for(2160)] == [1080, 720, 360]
    # All taller: the smallest is kept, at the source's height.
    assert [r.height for r in ladder.renditions_for(240)] == [240]
    assert [r.height for r in ladder.renditions_for(241)] == [240]


def test_a_ladder_fixes_a_gop_of_one_segment_in_every_rendition():
    recipe = ladder_recipe(Ladder.model_validate(LADDER), 1080, Fraction(25))
    assert recipe.chunk_safe and {v.gop_frames for v in recipe.videos} == {100}
    for video in recipe.videos:
        args = list(video.args)
        assert args[args.index("-g") + 1] == "100" and args[args.index("-sc_threshold") + 1] == "0"
        assert args[args.index("-maxrate") + 1] == str(int(video.height and 1.5 * 1000 *
                                                            {1080: 6000, 720: 3000, 360: 600}[video.height]))  # fmt: skip
    p = plan(source(120, fps=Fraction(25), height=1080), recipe.work(2.0))
    assert p.graph and p.mode == Mode.CHUNKED and p.renditions == ("1080p", "720p", "360p")


def test_a_short_ladder_job_is_still_a_graph_with_one_chunk():
    recipe = ladder_recipe(Ladder.model_validate(LADDER), 720, FPS30)
    p = plan(source(10), recipe.work(2.0))
    assert p.mode == Mode.SINGLE and p.graph and len(p.chunks) == 1
    assert p.graph and len(p.tasks) == 2 + 1 + 1 + 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"renditions": []}, "at least 1"),
        ({"renditions": [{"height": 720}]}, "either 'bitrate'"),
        ({"renditions": [{"height": 721, "bitrate": "1M"}]}, "even"),
        ({"renditions": [{"height": 9000, "bitrate": "1M"}]}, "less than or equal"),
        ({"renditions": [{"height": 720, "bitrate": "1M; rm -rf /"}]}, "digits"),
        ({"renditions": [{"height": 720, "crf": 23}]}, "maxrate"),
        ({"renditions": [{"height": 720, "bitrate": "1M", "x264opts": "a"}]}, "Extra inputs"),
        ({"video": {"codec": "h264", "preset": "placebo"}}, "preset must be"),
        ({"video": {"codec": "av1", "preset": "veryfast"}}, "0 to 13"),
        ({"video": {"codec": "vp8"}}, "Input should be"),
        ({"packaging": ["hls", "rtmp"]}, "Input should be"),
        ({"segment_seconds": 0}, "greater than or equal"),
        ({"renditions": [{"height": 720, "bitrate": "1M", "profile": "high10"}]}, "profile"),
    ],
)
def test_ladders_are_validated_field_by_field(change, message):
    with pytest.raises(ValidationError, match=message):
        Ladder.model_validate(LADDER | change)


# --- a ladder's renditions: one task each, or one decode for all of a chunk ----------


def ladder_work(**kw) -> Work:
    base = dict(renditions=("720p", "480p", "360p"), cost=1.9, chunk_safe=True, gop_frames=60,
                graph=True, rendition_costs=(1.0, 0.55, 0.35))  # fmt: skip
    return Work(**(base | kw))


def test_renditions_run_alone_when_every_task_gets_its_own_invocation():
    p = plan(source(120), ladder_work(), limits=Limits(concurrency=100))
    encodes = [t for t in p.tasks if t.kind == Kind.ENCODE]
    assert not p.decode_once and len(encodes) == 6 * 3
    assert {t.renditions for t in encodes} == {("720p",), ("480p",), ("360p",)}
    assert encodes[0].id == "encode-0000-720p" and encodes[0].rendition == "720p"


def test_a_chunks_renditions_share_one_decode_when_the_tasks_would_queue_anyway():
    alone = plan(source(120), ladder_work(), limits=Limits(concurrency=100))
    together = plan(source(120), ladder_work(), limits=Limits(concurrency=2))
    encodes = [t for t in together.tasks if t.kind == Kind.ENCODE]
    assert together.decode_once and len(encodes) == 6
    assert encodes[0].id == "encode-0000" and encodes[0].rendition is None
    assert encodes[0].renditions == ("720p", "480p", "360p")
    assert "one decode" in together.reason
    # Less work in all: two decodes of every chunk are saved.
    work = sum(t.weight for t in together.tasks)
    assert work < sum(t.weight for t in alone.tasks)
    # The estimate is the work over the cap, not the longest task.
    assert together.estimate.seconds >= sum(t.weight for t in encodes) / 2


def test_priority_cost_decodes_once_even_with_invocations_to_spare():
    p = plan(source(120), ladder_work(), Options(priority="cost"), Limits(concurrency=1000))
    assert p.decode_once


def test_a_single_rendition_is_never_grouped():
    p = plan(source(120), work(), limits=Limits(concurrency=1))
    assert not p.decode_once
    assert all(t.renditions == ("main.mp4",) for t in p.tasks if t.kind == Kind.ENCODE)


def test_the_stored_plan_lists_no_tasks_and_stays_small_for_a_long_ladder():
    # Two hours at 20 s chunks: 360 chunks x 3 renditions, 1,080 encode tasks (no audio,
    # whose one task would otherwise be the longest, so nothing is gained by splitting).
    p = plan(source(7200, has_audio=False), ladder_work(), limits=Limits(concurrency=1000))
    # ... a package per rendition, and the assemble.
    assert len(p.tasks) == 360 * 3 + 3 + 1 and not p.decode_once
    stored = json.dumps(p.record())
    assert 'tasks"' not in stored.replace('"tasks_total"', "")
    assert len(stored) < 8_000  # a DynamoDB item holds 400 KB; the job keeps outputs too
    back = Plan.from_record(json.loads(stored))
    assert back == p and back.task("encode-0359-360p").chunk == 359


def test_a_plan_stored_in_the_older_listed_form_is_still_read():
    older = {
        "mode": "chunked", "reason": "", "graph": True, "fps": [30, 1], "renditions": ["720p"],
        "chunks": [{"index": 0, "first_frame": 0, "end_frame": 600, "start": 0.0, "end": 20.0},
                   {"index": 1, "first_frame": 600, "end_frame": None, "start": 20.0, "end": None}],
        "tasks": [{"id": "encode-0000-720p", "kind": "encode", "chunk": 0, "rendition": "720p",
                   "weight": 10.0},
                  {"id": "encode-0001-720p", "kind": "encode", "chunk": 1, "rendition": "720p",
                   "weight": 10.0},
                  {"id": "assemble", "kind": "assemble", "chunk": None, "rendition": None,
                   "weight": 1.0}],
        "estimate": {"seconds": 30.0, "cost_usd": 0.001}, "details": {"gop_frames": 60},
    }  # fmt: skip
    p = Plan.from_record(older)
    assert [t.id for t in p.work_tasks] == ["encode-0000-720p", "encode-0001-720p"]
    assert p.task("encode-0001-720p").renditions == ("720p",) and not p.decode_once
    assert p.chunk(1).start == 20.0


def test_the_split_yields_audio_first_then_each_chunk_with_the_tasks_it_makes_ready(tmp_path):
    from chalicelib.graph.build import longest_first, pieces

    w = ladder_work(thumbnails=True)
    p = plan(source(60), w, limits=Limits(concurrency=100))
    made = []

    def run(args, cwd, duration):  # stands in for ffmpeg: the output file is the last arg
        out = Path(args[-1].removeprefix("file:"))
        out.write_bytes(b"piece")
        made.append(out.name)

    got = [
        (piece.name, [t.id for t in piece.tasks])
        for piece in pieces(Path("s.mp4"), p, tmp_path, run)
    ]
    assert got[0] == ("pieces/audio.mka", ["audio"])
    assert got[1] == ("pieces/piece-0000.mkv", ["encode-0000-720p", "encode-0000-480p",
                                                 "encode-0000-360p", "thumbnails-0000"])  # fmt: skip
    assert [name for name, _ in got] == ["pieces/audio.mka"] + [
        f"pieces/piece-{i:04d}.mkv" for i in range(3)
    ]
    assert made == ["audio.mka", "piece-0000.mkv", "piece-0001.mkv", "piece-0002.mkv"]
    every = [task for _, tasks in got for task in tasks]
    assert sorted(every) == sorted(t.id for t in p.work_tasks)  # each task sent exactly once
    # Within what is ready, the longest goes first.
    order = [t.id for t in longest_first(p.task(i) for i in got[1][1])]
    assert order[0] == "encode-0000-720p" and order[-1] == "thumbnails-0000"


@pytest.mark.parametrize("preset", ["h264_main_720p_3000", "h264_ladder_hls_dash"])
def test_one_encode_thread_reaches_the_encoder_and_decoder_of_every_chunk(monkeypatch, preset):
    """OE_ENCODE_THREADS=1 is one Lambda vCPU, for single-file presets as for ladders."""
    from chalicelib.graph.build import recipe_for
    from chalicelib.media import argv
    from chalicelib.presets.catalog import LADDERS

    monkeypatch.setenv("OE_ENCODE_THREADS", "1")
    seeded = {name: (data, output) for _, name, data, output in SEEDED}
    ladders = {name: json.dumps({"ladder": ladder.model_dump()}) for name, ladder in LADDERS}
    data, output = seeded.get(preset) or (ladders[preset], "ladder")
    recipe = recipe_for({"data": data, "output": output}, 720, FPS30)
    args = argv.encode_chunk(Path("p.mkv"), Path("c.mp4"), recipe.videos[0], start=4, end=8,
                             fps=FPS30)  # fmt: skip
    split = args.index("-i")
    decoder, encoder = args[:split], args[split:]
    assert decoder[decoder.index("-threads") + 1] == "1"
    assert encoder[encoder.index("-threads") + 1] == "1"
