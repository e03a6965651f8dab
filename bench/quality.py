"""Per-title ladders against the seeded fixed ladder: `make bench-quality` prints the figures.

Clips made with ffmpeg's sources, easy to hard, 1280x720 30 fps, BENCH_SECONDS long (20):
a still slide (SMPTE bars), a slow pan over a still fractal, a low-motion test pattern
(testsrc2: a still frame with small moving parts) and a zooming Mandelbrot with noise.
For each, through the local stack (chunked, OE_ENCODE_THREADS=1, VMAF measured by the
job's own quality tasks):

1. the seeded `h264_ladder_hls_dash` (fixed rates);
2. a per-title ladder over the same resolutions whose per-rung targets are the fixed
   ladder's measured VMAF (top rung first): the same quality, and what it costs in bits.

Printed per clip: each rung's bitrate and VMAF, fixed against per-title; the bits saved
(the whole ladder's, and the top rung's alone); the probe CPU as a share of the per-title
ladder's encode tasks' CPU; the measurement tasks' CPU as a share of the encode tasks';
the chunked measurement's mean VMAF less one whole-file libvmaf run of the same top
rendition. Then one line of JSON with the same figures. CPU figures are CPU seconds
(wait4), which the machine's load hardly changes; the load is printed with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.stack import Stack
from chalicelib.media import quality, steps
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.presets.catalog import LADDER_SEEDS
from chalicelib.presets.ladder import MAX_VMAF, MIN_VMAF
from ops.local_stack import running

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
SIZE = (1280, 720)
FIXED = "h264_ladder_hls_dash"
VMAF = {"metrics": ["vmaf"]}  # measured on every job
# (name, lavfi video source): easy to hard.
CLIPS = (
    ("still slide", "smptehdbars=size=1280x720:rate=30"),
    ("slow pan", "mandelbrot=size=1920x1080:rate=30:maxiter=256,trim=end_frame=1,"
                 "loop=loop=-1:size=1,setpts=N/30/TB,crop=1280:720:x='t*12':y='t*6'"),
    ("low motion", "testsrc2=size=1280x720:rate=30"),
    ("high motion + noise", "mandelbrot=size=1280x720:rate=30,noise=alls=24:allf=t+u"),
)  # fmt: skip


def make_clip(path: Path, source: str) -> Path:
    """A near-lossless mezzanine of the source, with a tone (fractals take a while)."""
    subprocess.run([
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", source, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(SECONDS), "-c:v", "libx264", "-preset", "veryfast", "-crf", "12",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest", str(path),
    ], check=True)  # fmt: skip
    return path


def rungs(job: dict) -> list[dict[str, Any]]:
    """Each rendition's MP4: name, kbps, VMAF mean; tallest first."""
    found = []
    for output in job["outputs"]:
        if output.get("kind") != "video" or not output.get("rendition"):
            continue
        vmaf = (output.get("quality") or {}).get("vmaf") or {}
        found.append({"rung": output["rendition"], "height": output.get("height"),
                      "kbps": round(output["bit_rate"] / 1000, 1),
                      "vmaf": vmaf.get("mean")})  # fmt: skip
    return sorted(found, key=lambda r: -(r["height"] or 0))


def cpu(tasks: list[dict], kind: str) -> float:
    return sum(t["cpu_seconds"] or 0.0 for t in tasks if t["kind"] == kind)


def targets(fixed: list[dict[str, Any]]) -> list[float]:
    """The fixed ladder's VMAF per rung as per-title targets: within 50-99, each lower."""
    chosen: list[float] = []
    for rung in fixed:
        target = min(MAX_VMAF, max(MIN_VMAF, round(float(rung["vmaf"]), 1)))
        if chosen and target >= chosen[-1]:
            target = round(chosen[-1] - 0.5, 1)
        if target < MIN_VMAF:
            break
        chosen.append(target)
    return chosen


def per_title_ladder(fixed_ladder: dict[str, Any], goals: list[float]) -> dict[str, Any]:
    allowed = [{k: v for k, v in r.items() if k in ("height", "profile", "level")}
               for r in fixed_ladder["renditions"]]  # fmt: skip
    return {**fixed_ladder, "mode": "per-title", "target_vmaf": goals[0], "targets": goals,
            "renditions": allowed}  # fmt: skip


def whole_vmaf(stack: Stack, dest: str, rung: str, source: Path, folder: Path) -> float:
    """One libvmaf run of the whole published rendition against the whole source."""
    folder.mkdir(parents=True, exist_ok=True)
    path = stack.fetch(f"{dest}{rung}.mp4", folder / f"{rung}.mp4")
    series = quality.measure(path, source, SIZE, folder / "whole", steps.local_run,
                             metrics=("vmaf",))  # fmt: skip
    return sum(series["vmaf"]) / len(series["vmaf"])


def run_clip(stack: Stack, work: Path, index: int, name: str, lavfi: str) -> dict[str, Any]:
    clip = make_clip(work / f"clip-{index}.mp4", lavfi)
    key = f"bench/clip-{index}.mp4"
    stack.s3.upload_file(str(clip), stack.buckets["input"], key)
    fixed_job, fixed_tasks = stack.job(
        FIXED, f"s3:///{key}", f"s3:///bench/{index}/fixed/", quality=VMAF
    )
    fixed = rungs(fixed_job)
    seeded = json.loads(next(d for _, n, d, _ in LADDER_SEEDS if n == FIXED))["ladder"]
    goals = targets(fixed)
    stack.preset(f"per-title-{index}", per_title_ladder(seeded, goals))
    dest = f"bench/{index}/per-title/"
    job, tasks = stack.job(f"per-title-{index}", f"s3:///{key}", f"s3:///{dest}", quality=VMAF)
    chosen = rungs(job)
    ladder = job["plan"]["ladder"]
    encode = cpu(tasks, "encode")
    top = chosen[0]
    whole = whole_vmaf(stack, dest, top["rung"], clip, work / f"whole-{index}")
    fixed_kbps, chosen_kbps = sum(r["kbps"] for r in fixed), sum(r["kbps"] for r in chosen)
    return {
        "clip": name,
        "targets": goals,
        "fixed": fixed,
        "per_title": chosen,
        "bits_saved": round(1 - chosen_kbps / fixed_kbps, 3),
        "top_bits_saved": round(1 - top["kbps"] / fixed[0]["kbps"], 3),
        "top_vmaf_vs_target": round(top["vmaf"] - goals[0], 2),
        "probe_cpu_seconds": ladder["probe_cpu_seconds"],
        "encode_cpu_seconds": round(encode, 2),
        "probe_cpu_share": round(ladder["probe_cpu_seconds"] / encode, 3),
        "measure_cpu_share": round(cpu(tasks, "quality") / encode, 3),
        "fixed_measure_cpu_share": round(
            cpu(fixed_tasks, "quality") / cpu(fixed_tasks, "encode"), 3
        ),
        "chunked_vs_whole_vmaf": round(top["vmaf"] - whole, 3),
        "chunks": job["plan"]["chunks"],
    }


def _rungs_text(found: list[dict[str, Any]]) -> str:
    return "  ".join(f"{r['rung']} {r['kbps']:.0f}k/{r['vmaf']:.1f}" for r in found)


def table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'clip':<20} {'ladder':<9} rungs (kb/s / VMAF mean)")
    for r in results:
        print(f"{r['clip']:<20} {'fixed':<9} {_rungs_text(r['fixed'])}")
        goals = "/".join(f"{t:g}" for t in r["targets"])
        print(f"{'':<20} {'per-title':<9} {_rungs_text(r['per_title'])}   (targets {goals})")
        print(f"{'':<20} bits saved {r['bits_saved']:+.0%} (top rung {r['top_bits_saved']:+.0%},"
              f" top VMAF {r['top_vmaf_vs_target']:+.2f} vs its target); probe CPU "
              f"{r['probe_cpu_seconds']:.1f} s = {r['probe_cpu_share']:.0%} of the encode's "
              f"{r['encode_cpu_seconds']:.1f} s; measurement CPU {r['measure_cpu_share']:.0%} "
              f"(fixed {r['fixed_measure_cpu_share']:.0%}); chunked - whole VMAF "
              f"{r['chunked_vs_whole_vmaf']:+.3f} over {r['chunks']} chunks")  # fmt: skip


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="oe-bench-quality-"))
    env = {"OE_LOCAL_CONCURRENCY": "2", "OE_ENCODE_THREADS": "1", "OE_BCRYPT_ROUNDS": "4",
           "OE_CHUNK_MIN_SECONDS": "0", "OE_CHUNK_SECONDS": "8"}  # fmt: skip
    load_before = os.getloadavg()
    print(f"{len(CLIPS)} clips of {SECONDS} s 1280x720 30 fps; machine: {os.cpu_count()} cores, "
          f"load {load_before[0]:.2f} before")  # fmt: skip
    results = []
    only = os.environ.get("BENCH_CLIPS")  # e.g. "0,3": a quick run on some clips
    with running(work / "state", **env) as (_process, facts):
        stack = Stack(facts)
        for index, (name, lavfi) in enumerate(CLIPS):
            if only and str(index) not in only.split(","):
                continue
            results.append(run_clip(stack, work, index, name, lavfi))
            print(f"  {name}: done", flush=True)
    table(results)
    load_after = os.getloadavg()
    print(f"machine load after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(json.dumps({"clips": results, "seconds": SECONDS,
                      "load": [round(x, 2) for x in load_before + load_after]},
                     separators=(",", ":")))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
