"""Per-title ladder math (chalicelib.presets.pertitle): samples, the hull, each rung's choice,
and the ladder preset's per-title fields; no ffmpeg, no AWS."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import pytest

from chalicelib.errors import InvalidInput
from chalicelib.media import probes
from chalicelib.presets import pertitle
from chalicelib.presets.ladder import PER_TITLE_HEIGHTS, Ladder
from chalicelib.presets.pertitle import Point
from chalicelib.presets.recipe import ladder_recipe
from chalicelib.presets.spec import parse_preset_data


def _curve(height: int, width: int, *figures: tuple[float, float, float]) -> list[Point]:
    return [Point(width, height, crf, kbps, vmaf) for crf, kbps, vmaf in figures]


# An easy source: 720p is as good as 1080p for fewer bits; 360p tops out low.
EASY = [
    *_curve(1080, 1920, (20, 2400, 98.0), (27, 1200, 96.0), (34, 600, 90.0)),
    *_curve(720, 1280, (20, 1200, 97.8), (27, 600, 95.8), (34, 300, 89.0)),
    *_curve(360, 640, (20, 400, 80.0), (27, 200, 76.0), (34, 100, 70.0)),
]


def test_samples_spread_over_the_source_and_stay_a_small_share_of_it():
    spread = pertitle.samples(600.0)
    assert len(spread) == pertitle.SAMPLES
    assert all(length == pertitle.SAMPLE_SECONDS for _, length in spread)
    starts = [start for start, _ in spread]
    assert starts == sorted(starts) and starts[0] > 0 and starts[-1] + 2 < 600
    short = pertitle.samples(20.0)
    assert sum(length for _, length in short) <= 20.0 * pertitle.SAMPLE_SHARE + 1e-9
    assert pertitle.samples(0.5) == [(0.0, 0.5)]
    assert pertitle.samples(0) == []


def test_the_hull_keeps_only_points_no_other_resolution_beats():
    on_hull = pertitle.hull(EASY)
    kbps = [p.kbps for p in on_hull]
    assert kbps == sorted(kbps)
    vmaf = [p.vmaf for p in on_hull]
    assert vmaf == sorted(vmaf)
    # 1080p at 1200 kbps (96.0) is beaten by 720p at 600 kbps (95.8) and 1200 kbps (97.8).
    assert Point(1920, 1080, 27, 1200, 96.0) not in on_hull
    assert Point(1280, 720, 27, 600, 95.8) in on_hull
    # Concave: each slope is no steeper than the one before.
    slopes = [(b.vmaf - a.vmaf) / (b.kbps - a.kbps) for a, b in itertools.pairwise(on_hull)]
    assert all(x >= y for x, y in itertools.pairwise(slopes))


def test_each_rung_takes_the_fewest_bits_reaching_its_target_and_a_1080p_rung_that_adds_nothing_is_dropped():
    rungs = pertitle.choose(EASY, [95, 87, 79, 71], margin=0)
    assert rungs[0].name == "720p"  # 720p reaches 95 with half the bits 1080p needs
    assert rungs[0].vmaf >= 95 and rungs[0].crf >= 27
    assert "1080p" not in [r.name for r in rungs]
    heights = [r.height for r in rungs]
    assert heights == sorted(heights, reverse=True) and len(set(heights)) == len(heights)
    for upper, lower in itertools.pairwise(rungs):
        assert lower.kbps <= (1 - pertitle.MIN_STEP) * upper.kbps
    assert all(r.vmaf >= r.target for r in rungs)


def test_an_unreachable_top_target_gets_the_most_quality_the_probes_allow():
    hard = _curve(720, 1280, (20, 5000, 80.0), (27, 2500, 70.0), (34, 1200, 60.0))
    (top,) = pertitle.choose(hard, [95])
    assert top.height == 720 and top.crf == 20 - pertitle.EXTRAPOLATE_CRF
    assert top.kbps > 5000  # more bits than any probe spent: per-title spends more here


def test_a_target_only_a_line_below_the_lowest_probed_crf_would_reach_goes_to_a_taller_resolution():
    # 480p's line would reach 80 at CRF 17; probed, it never does: 720p at CRF 22 does.
    points = [
        *_curve(720, 1280, (22, 3000, 81.0), (31, 1200, 70.0)),
        *_curve(480, 854, (22, 1500, 76.0), (31, 600, 62.0)),
    ]
    (top,) = pertitle.choose(points, [80], margin=0)
    assert top.height == 720 and top.crf == 22


def test_chosen_rungs_become_a_fixed_ladders_renditions_with_a_cap():
    ladder = Ladder.model_validate({"mode": "per-title", "target_vmaf": 95,
                                    "renditions": [{"height": 720, "profile": "main"},
                                                   {"height": 360, "maxrate": "150k"}]})  # fmt: skip
    rungs = pertitle.choose(EASY, ladder.rung_targets())
    made = pertitle.renditions(ladder, rungs)
    assert made[0].profile == "main" and made[0].crf == rungs[0].crf
    assert made[0].maxrate == f"{math.ceil(rungs[0].kbps * pertitle.CAP_FACTOR)}k"
    record = pertitle.record(ladder, EASY, rungs, 3.5, [(1.0, 2.0)])
    assert record["target_vmaf"] == 95 and record["probe_cpu_seconds"] == 3.5
    assert {"width", "height", "kbps", "vmaf", "crf"} <= set(record["points"][0])
    assert [c["name"] for c in record["chosen"]] == [r.name for r in rungs]
    again = pertitle.chosen_renditions(ladder, record)
    assert again == made
    fixed = ladder.chosen(again)
    assert fixed.mode == "fixed" and [r.height for r in fixed.renditions] == [
        r.height for r in rungs
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"ladder": {"mode": "per-title", "target_vmaf": 49}}', "50 to 99"),
        ('{"ladder": {"mode": "per-title", "target_vmaf": 99.5}}', "50 to 99"),
        ('{"ladder": {"mode": "per-title", "targets": [80, 90]}}', "lower than the one before"),
        ('{"ladder": {"target_vmaf": 90, "renditions": [{"height": 360, "bitrate": "500k"}]}}',
         "per-title"),
        ('{"raw": ["-c:v libx264"], "mode": "per-title", "target_vmaf": 95}', "ladder presets"),
        ('{"ladder": {"renditions": [{"height": 360}]}}', "give either 'bitrate'"),
    ],
)  # fmt: skip
def test_bad_per_title_asks_are_refused_saying_what_to_fix(data, message):
    with pytest.raises(InvalidInput, match=message):
        parse_preset_data(data)


def test_a_per_title_ladder_needs_only_its_mode_and_target():
    spec = parse_preset_data('{"ladder": {"mode": "per-title", "target_vmaf": 93}}')
    assert spec.ladder
    ladder = Ladder.model_validate({"mode": "per-title", "target_vmaf": 93})
    assert ladder.rung_targets()[0] == 93 and ladder.per_title
    assert [r.height for r in ladder.renditions] == list(PER_TITLE_HEIGHTS)


def test_a_probe_encodes_every_crf_point_from_one_decode_with_the_renditions_own_options():
    ladder = Ladder.model_validate({"mode": "per-title", "renditions": [{"height": 360}]})
    (video,) = ladder_recipe(ladder, 720, Fraction(30), threads=1).videos
    outs = [(22, Path("a.mp4")), (31, Path("b.mp4"))]
    args = probes.encode_argv(Path("src.mp4"), 4.5, 1.0, video, outs)
    assert args.count("-i") == 1 and args[args.index("-ss") + 1] == "4.500"
    assert args.count("-crf") == 2 and args[args.index("-crf") : args.index("-crf") + 2] == [
        "-crf",
        "22",
    ]
    assert "-maxrate" not in args and "-threads" in args and "split=2" in " ".join(args)
    scored = probes.measure_argv(Path("src.mp4"), 4.5, 1.0, (1280, 720), [o for _, o in outs])
    graph = scored[scored.index("-filter_complex") + 1]
    assert graph.count("libvmaf=") == 2 and "scale=1280:720:flags=bicubic" in graph
    assert f"mod(n\\,{probes.EVERY_NTH_FRAME})" in graph
