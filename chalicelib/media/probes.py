"""A per-title ladder's probe encodes: short samples of the source at a few CRF points per
allowed resolution, each scored with VMAF against the sample itself.

Per sample and resolution, one ffmpeg decodes the sample once, scales it and makes every
CRF point from it (the rendition's own encoder options, only the CRF differs). Per
sample, one libvmaf run scores all of them against one decode of the source: each
probe is scaled back up to the source's size (bicubic) and every third frame is scored
(the mean of a regular subsample estimates the mean, for a third of the cost).
Pure, but for the `run` it is handed: no AWS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from chalicelib.media import argv as media_argv
from chalicelib.media.quality import MODEL, QualityFailed
from chalicelib.media.sandbox import INPUT_FENCE, OUTPUT_FENCE
from chalicelib.presets.pertitle import Point, width_for
from chalicelib.presets.recipe import VideoRecipe

Run = Callable[[list[str], Path, "float | None"], None]
EVERY_NTH_FRAME = 5


def _sample_input(source: Path, start: float, seconds: float) -> list[str]:
    """The sample, seeked and cut on input: every probe and its reference decode alike."""
    return [*INPUT_FENCE, "-format_whitelist", media_argv.SOURCE_DEMUXERS,
            "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", f"file:{source}"]  # fmt: skip


def _with_crf(args: tuple[str, ...], crf: float) -> list[str]:
    """The rendition's encoder options at `crf` (its own rate control replaced)."""
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-crf", "-b:v", "-maxrate", "-bufsize") and i + 1 < len(args):
            skip = True
            continue
        out.append(arg)
    return [*out, "-crf", f"{crf:g}"]


def encode_argv(
    source: Path, start: float, seconds: float, video: VideoRecipe, outs: list[tuple[float, Path]]
) -> list[str]:
    """One decode of the sample, scaled to the rendition, encoded at each CRF."""
    labels = [f"p{i}" for i in range(len(outs))]
    chain = ",".join(video.filters) or "null"
    graph = f"[0:v:0]{chain},split={len(outs)}" + "".join(f"[{x}]" for x in labels)
    args: list[str] = []
    for label, (crf, out) in zip(labels, outs, strict=True):
        args += ["-map", f"[{label}]", *_with_crf(video.args, crf), "-an", "-sn", "-dn",
                 "-f", "mp4", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip
    return [*_sample_input(source, start, seconds), "-filter_complex", graph, *args]


def _log(index: int) -> str:
    return f"probe-{index}.json"


def measure_argv(
    source: Path, start: float, seconds: float, size: tuple[int, int], probes: list[Path]
) -> list[str]:
    """Every probe of one sample against one decode of it, one libvmaf log each."""
    width, height = size
    every = f"select=not(mod(n\\,{EVERY_NTH_FRAME}))"
    common = "settb=1/1000,setpts=N,format=yuv420p"
    labels = [f"r{i}" for i in range(len(probes))]
    graph = f"[0:v:0]{every},{common},split={len(probes)}" + "".join(f"[{x}]" for x in labels)
    inputs: list[str] = []
    for i, probe in enumerate(probes):
        inputs += media_argv.own_input(probe)
        graph += (f";[{i + 1}:v:0]{every},scale={width}:{height}:flags=bicubic,{common}[d{i}]"
                  f";[d{i}][r{i}]libvmaf=model={MODEL}:log_fmt=json:log_path={_log(i)}"
                  ":shortest=1:n_threads=1")  # fmt: skip
    return [*_sample_input(source, start, seconds), *inputs, "-filter_complex", graph,
            "-an", "-sn", "-dn", "-f", "null", *OUTPUT_FENCE, "/dev/null"]  # fmt: skip


def _vmaf_frames(path: Path) -> list[float]:
    try:
        frames = json.loads(path.read_text())["frames"]
        return [float(f["metrics"]["vmaf"]) for f in frames]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QualityFailed(f"libvmaf wrote no readable probe log ({exc})") from None


def probe(
    source: Path,
    size: tuple[int, int],
    videos: Iterable[VideoRecipe],
    samples: list[tuple[float, float]],
    crfs: Iterable[float],
    folder: Path,
    run: Run,
) -> list[Point]:
    """Each resolution at each CRF over every sample: its kbps and its mean VMAF."""
    videos, crfs = list(videos), list(crfs)
    bits: dict[tuple[int, float], float] = {}
    scores: dict[tuple[int, float], list[float]] = {}
    total = sum(seconds for _, seconds in samples)
    for s, (start, seconds) in enumerate(samples):
        here = folder / f"sample-{s}"
        here.mkdir(parents=True, exist_ok=True)
        made: list[tuple[int, float, Path]] = []
        for video in videos:
            outs = [(crf, here / f"{video.height}-{crf:g}.mp4") for crf in crfs]
            run(encode_argv(source, start, seconds, video, outs), here, seconds)
            made += [(video.height or 0, crf, out) for crf, out in outs]
        run(measure_argv(source, start, seconds, size, [p for _, _, p in made]), here, seconds)
        for i, (height, crf, out) in enumerate(made):
            bits[height, crf] = bits.get((height, crf), 0.0) + out.stat().st_size * 8
            scores.setdefault((height, crf), []).extend(_vmaf_frames(here / _log(i)))
            out.unlink()
    points = []
    for (height, crf), frames in scores.items():
        if not frames:
            raise QualityFailed(f"the {height}p probe at CRF {crf:g} scored no frames")
        points.append(Point(width_for(size, height), height, crf,
                            round(bits[height, crf] / total / 1000, 1),
                            round(sum(frames) / len(frames), 3)))  # fmt: skip
    return points
