"""A per-title ladder's choice, made in the job's run between probing and planning.

The probes (chalicelib.media.probes) run on this host's runner, so their CPU time is the
job's and is reported on its own; the pure choice (chalicelib.presets.pertitle) makes the
ladder, and its record goes on the plan (`details.ladder`), where every task rebuilding
the recipe finds the chosen renditions. A ladder that is not per-title changes nothing.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from chalicelib.media import probes
from chalicelib.media.probe import MediaInfo
from chalicelib.media.quality import QualityFailed
from chalicelib.media.steps import MediaFailed
from chalicelib.presets import pertitle
from chalicelib.presets.ladder import Ladder
from chalicelib.presets.recipe import ladder_recipe


def per_title(snapshot: dict[str, Any]) -> Ladder | None:
    """The job's ladder if it is per-title."""
    document = json.loads(snapshot["data"])
    if not isinstance(document, dict) or "ladder" not in document:
        return None
    ladder = Ladder.model_validate(document["ladder"])
    return ladder if ladder.per_title else None


def applied(ladder: Ladder, chosen: dict[str, Any] | None) -> Ladder:
    """The ladder to encode: a per-title one's chosen renditions (as recorded on the plan)."""
    if not ladder.per_title or not chosen:
        return ladder
    return ladder.chosen(pertitle.chosen_renditions(ladder, chosen))


def choose(
    snapshot: dict[str, Any],
    info: MediaInfo,
    source: Path,
    folder: Path,
    run: Any,
    fps: Fraction | None,
    threads: int = 0,
) -> dict[str, Any] | None:
    """Probe the source and choose its ladder: the record the plan keeps, or None."""
    ladder = per_title(snapshot)
    video = info.video
    if ladder is None or video is None or not video.width or not video.height:
        return None
    allowed = ladder_recipe(ladder, video.height, fps, threads).videos
    sampled = pertitle.samples(info.duration or 0.0)
    before = float(getattr(run, "cpu_seconds", 0.0))
    try:
        points = probes.probe(source, (video.width, video.height), allowed, sampled,
                              pertitle.PROBE_CRFS, folder, run)  # fmt: skip
    except QualityFailed as exc:
        raise MediaFailed(f"the per-title probes could not be scored: {exc}") from None
    rungs = pertitle.choose(points, ladder.rung_targets())
    cpu = float(getattr(run, "cpu_seconds", 0.0)) - before
    return pertitle.record(ladder, points, rungs, cpu, sampled)
