"""Per-title ladders: from probe encodes' (bits, VMAF) points to the ladder worth encoding.

Each allowed resolution is probed at a few CRF points on short samples spread over the
source. Per resolution the points form a rate-quality curve (VMAF piecewise linear in
CRF, bits log-linear in CRF, as x264's rate roughly halves every 6 CRF). Their upper
convex hull in (kbps, VMAF) says which resolution is worth its bits where; each rung
takes the fewest bits that reach its target, at a resolution no taller than the rung
above, and a rung that saves too little over the one above adds nothing and is dropped.
Pure: no AWS, no ffmpeg (the probes are chalicelib.media.probes', run by the graph).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from chalicelib.presets.ladder import Ladder, Rendition

# CRF points probed per resolution (x264's scale): two points and the slope between them
# (more points cost more probe CPU than the ladder can spare; see docs/guides).
PROBE_CRFS = (22, 31)
# A chosen CRF may lie this far above the highest probed (the curve's end slope carries
# on), never below the lowest: VMAF flattens at low CRF, so a line there over-promises.
EXTRAPOLATE_CRF = 5
CRF_RANGE = (12, 45)
# Aim this much above each target: samples stand for the whole title only roughly.
MARGIN_VMAF = 1.0
# A rung must save at least this share of the bits of the rung above, else it adds nothing.
MIN_STEP = 0.2
# The chosen rung's VBV cap against its expected average rate (CRF keeps quality; the cap
# keeps peaks playable).
CAP_FACTOR = 2.0
MIN_CAP_KBPS = 64
# Samples: up to SAMPLES of SAMPLE_SECONDS each, in all at most SAMPLE_SHARE of the
# source (probe CPU stays a small share of the ladder's), and at least MIN_SAMPLE_SECONDS.
SAMPLES, SAMPLE_SECONDS, SAMPLE_SHARE, MIN_SAMPLE_SECONDS = 4, 2.0, 0.05, 1.0


@dataclass(frozen=True)
class Point:
    """One probe: a resolution at a CRF, its bits (kbps) and VMAF over every sample."""

    width: int
    height: int
    crf: float
    kbps: float
    vmaf: float


@dataclass(frozen=True)
class Rung:
    name: str
    width: int
    height: int
    crf: int
    kbps: float  # expected average, from the curve
    vmaf: float  # expected, from the curve
    target: float


def samples(duration: float) -> list[tuple[float, float]]:
    """(start, seconds) of each sample, spread evenly over the source's timeline."""
    if duration <= 0:
        return []
    total = min(SAMPLES * SAMPLE_SECONDS, max(MIN_SAMPLE_SECONDS, duration * SAMPLE_SHARE))
    if total >= duration:
        return [(0.0, round(duration, 3))]
    count = max(1, min(SAMPLES, int(total // MIN_SAMPLE_SECONDS)))
    length = total / count
    starts = [duration * (i + 0.5) / count - length / 2 for i in range(count)]
    return [(round(min(max(s, 0.0), duration - length), 3), round(length, 3)) for s in starts]


def width_for(size: tuple[int, int] | None, height: int) -> int:
    """The width `scale=-2:<height>` gives a source of `size` (even, aspect kept)."""
    if not size or not size[1]:
        return round(height * 16 / 9 / 2) * 2
    return max(2, round(size[0] * height / size[1] / 2) * 2)


def hull(points: Iterable[Point]) -> list[Point]:
    """The upper convex hull of (kbps, VMAF) over every resolution, fewest bits first.

    Only points that no other beats (more VMAF for no more bits) and that lie on the
    concave envelope remain: between two hull points, no probe did better.
    """
    ordered = sorted(points, key=lambda p: (p.kbps, -p.vmaf))
    frontier: list[Point] = []
    for p in ordered:
        if frontier and p.vmaf <= frontier[-1].vmaf:
            continue  # as many bits or more for no more quality
        frontier.append(p)
    upper: list[Point] = []
    for p in frontier:
        while len(upper) >= 2 and _turn(upper[-2], upper[-1], p) >= 0:
            upper.pop()  # the middle point lies under the chord: not on the hull
        upper.append(p)
    return upper


def _turn(a: Point, b: Point, c: Point) -> float:
    """> 0 when b lies below the chord a→c (a left turn in (kbps, VMAF))."""
    return (b.kbps - a.kbps) * (c.vmaf - a.vmaf) - (b.vmaf - a.vmaf) * (c.kbps - a.kbps)


def _line(x0: float, y0: float, x1: float, y1: float, x: float) -> float:
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _segment(curve: list[Point], crf: float) -> tuple[Point, Point]:
    """The probed pair whose line gives the curve at `crf` (the end ones extrapolate)."""
    for a, b in itertools.pairwise(curve):
        if crf <= b.crf:
            return a, b
    return curve[-2], curve[-1]


def vmaf_at(curve: list[Point], crf: float) -> float:
    if len(curve) == 1:
        return curve[0].vmaf
    a, b = _segment(curve, crf)
    return min(100.0, _line(a.crf, a.vmaf, b.crf, b.vmaf, crf))


def kbps_at(curve: list[Point], crf: float) -> float:
    if len(curve) == 1:
        return curve[0].kbps
    a, b = _segment(curve, crf)
    logs = _line(a.crf, math.log(max(a.kbps, 1e-3)), b.crf, math.log(max(b.kbps, 1e-3)), crf)
    return math.exp(logs)


def crf_for(curve: list[Point], target: float) -> int | None:
    """The highest whole CRF (fewest bits) whose VMAF reaches `target`; None if none does.

    VMAF falls as CRF rises; probes are noisy, so the search walks the curve itself.
    """
    if not curve:
        return None
    low = max(CRF_RANGE[0], math.ceil(curve[0].crf))
    high = min(CRF_RANGE[1], math.ceil(curve[-1].crf) + EXTRAPOLATE_CRF)
    best = None
    for crf in range(low, high + 1):
        if vmaf_at(curve, crf) >= target:
            best = crf
    return best


def curves(points: Iterable[Point]) -> dict[int, list[Point]]:
    """The points of each resolution, by CRF."""
    by_height: dict[int, list[Point]] = {}
    for p in points:
        by_height.setdefault(p.height, []).append(p)
    return {h: sorted(ps, key=lambda p: p.crf) for h, ps in by_height.items()}


def _rung(curve: list[Point], crf: int, target: float) -> Rung:
    p = curve[0]
    return Rung(f"{p.height}p", p.width, p.height, crf, round(kbps_at(curve, crf), 1),
                round(vmaf_at(curve, crf), 2), target)  # fmt: skip


def choose(
    points: Iterable[Point], targets: list[float], margin: float = MARGIN_VMAF
) -> list[Rung]:
    """Each target's rung (top first): the fewest bits reaching it, at a height under the
    rung above; a rung saving less than MIN_STEP of the bits above is dropped.

    The top rung always exists: when no resolution reaches its target, it is the best the
    probes saw (the tallest resolution at the lowest CRF allowed).
    """
    by_height = curves(points)
    if not by_height:
        return []
    chosen: list[Rung] = []
    for target in targets:
        ceiling = chosen[-1].height if chosen else math.inf
        options = []
        for height, curve in by_height.items():
            if height >= ceiling:
                continue
            crf = crf_for(curve, target + margin)
            if crf is not None:
                options.append(_rung(curve, crf, target))
        if not options:
            if not chosen:  # unreachable: the most quality the probes allow
                tallest = by_height[max(by_height)]
                low = max(CRF_RANGE[0], math.floor(tallest[0].crf) - EXTRAPOLATE_CRF)
                chosen.append(_rung(tallest, low, target))
            continue
        best = min(options, key=lambda r: (r.kbps, -r.height))
        if chosen and best.kbps > (1 - MIN_STEP) * chosen[-1].kbps:
            continue  # too close to the rung above to be worth a switch
        chosen.append(best)
    return chosen


def renditions(ladder: Ladder, rungs: list[Rung]) -> list[Rendition]:
    """The chosen rungs as a fixed ladder's renditions: CRF with a VBV cap, and the allowed
    rendition's profile and level (and its own cap, if it gave one and it is lower)."""
    allowed = {r.height: r for r in ladder.renditions}
    made = []
    for rung in rungs:
        own = allowed.get(rung.height)
        cap = max(MIN_CAP_KBPS, math.ceil(rung.kbps * CAP_FACTOR))
        if own is not None and own.maxrate:
            cap = min(cap, own.cap_bps // 1000)
        made.append(
            Rendition(
                height=rung.height,
                crf=rung.crf,
                maxrate=f"{cap}k",
                profile=own.profile if own else None,
                level=own.level if own else None,
            )
        )
    return made


def record(
    ladder: Ladder,
    points: list[Point],
    rungs: list[Rung],
    probe_cpu_seconds: float,
    sampled: list[tuple[float, float]],
) -> dict:
    """What the plan keeps (`plan.ladder`): why this ladder, and what the probes cost."""
    on_hull = set(hull(points))
    made = renditions(ladder, rungs)
    return {
        "mode": "per-title",
        "target_vmaf": ladder.rung_targets()[0],
        "targets": ladder.rung_targets(),
        "points": [{**asdict(p), "hull": p in on_hull} for p in points],
        "chosen": [{**asdict(r), "maxrate": m.maxrate} for r, m in zip(rungs, made, strict=True)],
        "probe_cpu_seconds": round(probe_cpu_seconds, 3),
        "samples": [list(s) for s in sampled],
    }


def chosen_renditions(ladder: Ladder, recorded: dict) -> list[Rendition]:
    """The renditions a recorded choice made, for every task that rebuilds the recipe."""
    allowed = {r.height: r for r in ladder.renditions}
    made = []
    for rung in recorded.get("chosen") or []:
        own = allowed.get(int(rung["height"]))
        made.append(
            Rendition(
                height=int(rung["height"]),
                crf=int(rung["crf"]),
                maxrate=str(rung["maxrate"]),
                profile=own.profile if own else None,
                level=own.level if own else None,
            )
        )
    return made
