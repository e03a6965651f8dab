"""Quality of a rendition against its source: the libvmaf argv, its JSON log, the summary.

One libvmaf run measures every metric at once: VMAF (the built-in `vmaf_v0.6.1` model),
PSNR (luma, libvmaf's `psnr` feature) and SSIM (luma, `float_ssim`), frame by frame.
The rendition is scaled up to the source's size with bicubic (as the VMAF documentation
recommends) and both sides are brought to yuv420p, so odd sources compare like any other.
A chunk is measured against its piece of the source trimmed exactly as its encode was, so
the chunks' frames add up to the whole rendition's, frame for frame.
Pure, but for `measure` (which takes the host's `Run`): no AWS, no tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

from chalicelib.media import argv as media_argv
from chalicelib.media.sandbox import OUTPUT_FENCE
from chalicelib.media.steps import FfmpegKilled, MediaFailed
from chalicelib.presets.quality import METRICS

MODEL = "version=vmaf_v0.6.1"
LOG_NAME = "libvmaf.json"
# libvmaf's per-frame key for each metric.
_KEYS = {"vmaf": "vmaf", "psnr": "psnr_y", "ssim": "float_ssim"}
_DIGITS = {"vmaf": 3, "psnr": 3, "ssim": 5}
Run = Callable[[list[str], Path, "float | None"], None]


class QualityFailed(Exception):
    """A measurement that could not be made: the encode stands, its quality says why not."""


def _graph(size: tuple[int, int], threads: int, reference_head: str) -> str:
    width, height = size
    # Frame n of one side meets frame n of the other: each side's timestamps are renumbered
    # (containers round times differently, and libvmaf pairs frames by timestamp).
    common = "settb=1/1000,setpts=N,format=yuv420p"
    distorted = f"[0:v:0]scale={width}:{height}:flags=bicubic,{common}[d]"
    reference = f"[1:v:0]{reference_head}{common}[r]"
    features = [f"name={name}" for name in ("psnr", "float_ssim")]
    # `shortest`: a side's last frame is not repeated to pair with a frame the other lacks.
    options = [f"model={MODEL}", "log_fmt=json", f"log_path={LOG_NAME}", "shortest=1",
               f"n_threads={max(1, threads)}", "feature=" + "|".join(features)]  # fmt: skip
    return f"{distorted};{reference};[d][r]libvmaf=" + ":".join(options)


def measure_argv(
    rendition: Path,
    reference: Path,
    size: tuple[int, int],
    *,
    threads: int = 1,
    trim: tuple[float, float | None, Fraction, float] | None = None,
) -> list[str]:
    """libvmaf of `rendition` (scaled up to `size`) against `reference`, log in the cwd.

    `trim` (start, end, fps, source_start) cuts a piece of the source exactly as its
    chunk's encode cut it; without it the reference is the whole source.
    """
    head = ""
    if trim is not None:
        start, end, fps, source_start = trim
        head = media_argv.chunk_trim(start, end, fps, source_start) + ",setpts=PTS-STARTPTS,"
    graph = _graph(size, threads, head)
    reference_input = (
        media_argv.own_input(reference, copyts=True)
        if trim is not None
        else media_argv.source_input(reference)
    )
    return [
        *media_argv.own_input(rendition), *reference_input,
        "-filter_complex", graph, "-an", "-sn", "-dn", "-f", "null", *OUTPUT_FENCE, "/dev/null",
    ]  # fmt: skip


def parse_log(text: str, metrics: Iterable[str] = METRICS) -> dict[str, list[float]]:
    """The per-frame series of each asked metric from libvmaf's JSON log."""
    try:
        frames = json.loads(text)["frames"]
    except (ValueError, KeyError, TypeError) as exc:
        raise QualityFailed(f"libvmaf wrote no readable log ({exc})") from None
    series: dict[str, list[float]] = {}
    for name in metrics:
        key = _KEYS[name]
        try:
            series[name] = [round(float(f["metrics"][key]), _DIGITS[name]) for f in frames]
        except (KeyError, TypeError, ValueError):
            raise QualityFailed(f"libvmaf's log has no {key} for every frame") from None
    if not frames:
        raise QualityFailed("libvmaf measured no frames")
    return series


def measure(
    rendition: Path,
    reference: Path,
    size: tuple[int, int],
    folder: Path,
    run: Run,
    *,
    metrics: Iterable[str] = METRICS,
    threads: int = 1,
    trim: tuple[float, float | None, Fraction, float] | None = None,
    duration: float | None = None,
) -> dict[str, list[float]]:
    """Run libvmaf in `folder` and return the per-frame series of each metric."""
    metrics = tuple(metrics)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / LOG_NAME
    log.unlink(missing_ok=True)
    # One run makes all three metrics: the log is read for the asked ones.
    args = measure_argv(rendition, reference, size, threads=threads, trim=trim)
    run(args, folder, duration)
    if not log.exists():
        raise QualityFailed("libvmaf wrote no log")
    return parse_log(log.read_text(), metrics)


# --- the summary ---------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The `share` (0-100) percentile, linearly interpolated between ranks (numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * share / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def harmonic_mean(values: list[float]) -> float:
    """libvmaf's harmonic mean: of (x + 1), less 1, so a frame scored 0 does not divide by 0."""
    return len(values) / sum(1.0 / (v + 1.0) for v in values) - 1.0


def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    return {
        "mean": round(sum(values) / len(values), digits),
        "harmonic_mean": round(harmonic_mean(values), digits),
        "min": round(min(values), digits),
        "p1": round(percentile(values, 1), digits),
        "p5": round(percentile(values, 5), digits),
    }


def chunk_result(series: dict[str, list[float]]) -> dict[str, Any]:
    """What one measured chunk stores: its frame count and every metric's series."""
    frames = {len(values) for values in series.values()}
    return {"frames": frames.pop() if len(frames) == 1 else 0, "series": series}


def failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "reason": reason}


def aggregate(rendition: str, chunks: list[dict[str, Any]]) -> tuple[dict[str, Any], dict]:
    """The chunks' results in timeline order → (the output's `quality`, the series document).

    One failed chunk fails the rendition's quality (a mean over part of the timeline would
    read as the whole's); the series document is then empty.
    """
    for chunk in chunks:
        if chunk.get("status") == "failed":
            return failed(chunk.get("reason") or "the measurement failed"), {}
    if not chunks:
        return failed("nothing was measured"), {}
    names = list(chunks[0]["series"])
    series = {name: [v for c in chunks for v in c["series"][name]] for name in names}
    frames = sum(int(c["frames"]) for c in chunks)
    metrics = {name: summary(values, _DIGITS[name]) for name, values in series.items()}
    quality = {"status": "ok", "frames": frames, "chunks": len(chunks), **metrics}
    document = {"rendition": rendition, "frames": frames, "metrics": metrics, "series": series}
    return quality, document


def series_name(rendition: str) -> str:
    """Where a rendition's per-frame series is published, under the job's dest."""
    return f"quality/{rendition}.json"


def write_series(publish: Path, rendition: str, summary: dict, document: dict) -> dict:
    """The series document into the folder being published; the summary names it."""
    if document:
        target = publish / series_name(rendition)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, separators=(",", ":")))
        summary = {**summary, "series": series_name(rendition)}
    return summary


def measure_whole(
    rendition: str,
    path: Path,
    source: Path,
    size: tuple[int, int] | None,
    folder: Path,
    publish: Path,
    run: Run,
    *,
    metrics: Iterable[str],
    threads: int = 1,
) -> dict[str, Any]:
    """A one-file job's measurement (one chunk, the whole timeline): its summary, or why not.

    Only a killed ffmpeg propagates (it is tried again); any other failure is the result.
    """
    try:
        if size is None:
            raise QualityFailed("the source has no video to measure against")
        if not path.is_file():
            raise QualityFailed(f"the output {rendition!r} is not one file")
        series = measure(path, source, size, folder, run, metrics=metrics, threads=threads)
        summary, document = aggregate(rendition, [chunk_result(series)])
    except FfmpegKilled:
        raise
    except (MediaFailed, QualityFailed) as exc:
        return failed(str(exc))
    return write_series(publish, rendition, summary, document)


_PREFERRED = ("video", "playlist", "segments")  # which of a rendition's outputs carries it


def attach(records: list[dict[str, Any]], qualities: dict[str, dict[str, Any]]) -> None:
    """Each rendition's `quality` onto its output: the MP4, else its playlist or segments."""
    for name, result in qualities.items():
        mine = [
            r
            for r in records
            if r.get("kind") != "quality"
            and (r.get("rendition") == name or str(r.get("key", "")).rsplit("/", 1)[-1] == name)
        ]
        mine.sort(key=lambda r: _PREFERRED.index(r["kind"]) if r.get("kind") in _PREFERRED else 9)
        if mine:
            mine[0]["quality"] = result
        for record in records:  # the series file (a one-file job's is not described as one)
            if str(record.get("key", "")).endswith("/" + series_name(name)):
                record.update({"kind": "quality", "rendition": name})
