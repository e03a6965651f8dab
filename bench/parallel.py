"""Chunked encoding against one monolithic encode: `make bench-parallel` prints the figures.

Source: a generated 120 s 1280x720 30 fps mezzanine with audio and noise. Every encode
runs with `-threads 1`, as one Lambda vCPU would (OE_ENCODE_THREADS=1).

1. the monolithic single-task wall time (the preset's ffmpeg run on the whole source);
2. the chunked job's wall time through the local stack with OE_LOCAL_CONCURRENCY=2;
3. the projected wall time on N Lambdas: probe + plan (with the split and fan-out, until
   the first task starts) + the longest chunk + assemble, from the job's own phase times
   and each task's measured seconds in a run of one task at a time (each has the CPU to
   itself, as each Lambda has its own), and the same from the 2-way run's task times;
4. the speedups of 2 and 3 over 1;
5. bitrate and PSNR of the chunked output against the monolithic one, and frame counts;
and, for the seeded H.264 ladder, its tasks' CPU seconds against encoding each
rendition of the whole source separately.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path

from bench.stack import Stack
from chalicelib.media.probe import ffmpeg_exe, fill_video_bit_rate, probe
from chalicelib.presets.catalog import LADDERS, SEEDED
from chalicelib.presets.recipe import ladder_recipe
from chalicelib.presets.spec import parse_preset_data
from ops.local_stack import running
from tests.media import av_clip

SECONDS = int(os.environ.get("BENCH_SECONDS", "120"))
PRESET = "h264_main_720p_3000"
LADDER = "h264_ladder_hls_dash"
SOURCE = "s3:///bench/mezz.mp4"


def _time(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def direct(args: list[str], source: Path, out: Path) -> tuple[float, float]:
    """ffmpeg run on its own, decoder and encoder on one thread each as the tasks run:
    (wall seconds, CPU seconds of every thread it ran)."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-threads", "1", "-i", str(source), *args, str(out)]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def frames(path: Path) -> int:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                             "-c", "copy", "-f", "null", "-"], capture_output=True, text=True)  # fmt: skip
    return int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1])


def psnr(reference: Path, other: Path) -> float:
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(other), "-i", str(reference),
         "-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"],
        capture_output=True, text=True,
    )  # fmt: skip
    return float(re.findall(r"average:([\d.]+|inf)", result.stderr)[-1])


def critical_path(job: dict, tasks: list[dict]) -> tuple[float, float, float]:
    """(planning, longest task, assemble) of a finished chunked job.

    Planning runs from the claim to the first task's start: download, probe, plan, and
    the split and fan-out (pieces stored, messages sent and picked up) the tasks wait for.
    """
    first_start = min(_time(t["started"]) for t in tasks if t.get("started"))
    planning = first_start - _time(job["phases"]["claimed"])
    work = [t["seconds"] for t in tasks if t["kind"] in ("encode", "audio", "thumbnails")]
    assemble = next(t["seconds"] for t in tasks if t["kind"] == "assemble")
    return planning, max(work), assemble


def projection(work: Path, source: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """The chunked job again with one invocation at a time: each task's time on its own."""
    with running(work / "state-alone", **(env | {"OE_LOCAL_CONCURRENCY": "1"})) as (_, facts):
        stack = Stack(facts)
        stack.s3.upload_file(str(source), stack.buckets["input"], "bench/mezz.mp4")
        return critical_path(*stack.job(PRESET, SOURCE, "s3:///bench/alone/"))


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="oe-bench-parallel-"))
    print(f"generating a {SECONDS} s 1280x720 30 fps mezzanine (8 Mb/s, noise, audio) ...")
    source = av_clip(work / "mezz.mp4", seconds=SECONDS, rate=30, bitrate="8M")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} before the runs")

    data, output = next((d, o) for _, n, d, o in SEEDED if n == PRESET)
    mono = work / f"mono-{output}"
    mono_seconds, mono_cpu = direct([*parse_preset_data(data).args, "-threads", "1"], source, mono)
    print(f"1. monolithic single task ({PRESET}, -threads 1): {mono_seconds:7.1f} s "
          f"({mono_cpu:.1f} CPU s)")  # fmt: skip

    env = {"OE_LOCAL_CONCURRENCY": "2", "OE_ENCODE_THREADS": "1", "OE_BCRYPT_ROUNDS": "4"}
    for name in ("OE_CHUNK_MIN_SECONDS", "OE_CHUNK_SECONDS"):  # a quick run on a short clip
        if name in os.environ:
            env[name] = os.environ[name]
    alone = projection(work, source, env)  # first, so nothing else runs beside it
    with running(work / "state", **env) as (_process, facts):
        stack = Stack(facts)
        stack.s3.upload_file(str(source), stack.buckets["input"], "bench/mezz.mp4")
        job, tasks = stack.job(PRESET, SOURCE, "s3:///bench/chunked/")
        wall = _time(job["phases"]["completed"]) - _time(job["created_date"])
        plan = job["plan"]
        print(f"2. chunked job, local stack, OE_LOCAL_CONCURRENCY=2: {wall:7.1f} s "
              f"({plan['chunks']} chunks, {plan['tasks_total']} tasks)")  # fmt: skip
        planning, longest, assemble = critical_path(job, tasks)
        shared = planning + longest + assemble
        cpu = sum(t["cpu_seconds"] or 0 for t in tasks)
        encodes = [t["seconds"] for t in tasks if t["kind"] == "encode"]
        print(f"   CPU: {float(job['cpu_seconds']):.1f} s for the whole job (split, "
              f"{len(tasks)} tasks) vs {mono_cpu:.1f} s monolithic; encode tasks "
              f"{sum(t['cpu_seconds'] or 0 for t in tasks if t['kind'] == 'encode'):.1f} s "
              f"of {cpu:.1f} s")  # fmt: skip
        print(f"   encode tasks: {len(encodes)} took {sum(encodes):.1f} s in all, longest "
              f"{max(encodes):.1f} s: {sum(encodes) / max(encodes):.2f}x over one task doing "
              f"them all (load-independent view of 3)")  # fmt: skip
        # Planning from the 2-way run: there a second invocation starts the first task while
        # the fan-out still cuts the rest, as on Lambda (one at a time, the fan-out holds
        # the only slot). Task times from the run one at a time: each had the CPU to itself.
        projected = planning + alone[1] + alone[2]
        print(f"3. projected on N Lambdas: {projected:7.1f} s = download+probe+plan+split "
              f"until the first task starts {planning:.1f} + longest task {alone[1]:.1f} "
              f"+ assemble {alone[2]:.1f} (tasks timed in a run one at a time: each had the "
              f"CPU to itself, as a Lambda has its own)")  # fmt: skip
        print(f"   from the 2-way run's task times instead (two tasks sharing 2 cores): "
              f"{shared:.1f} s = {planning:.1f} + {longest:.1f} + {assemble:.1f}")  # fmt: skip
        print(f"4. speedup over 1: measured 2-way {mono_seconds / wall:.2f}x (target >= 1.6), "
              f"projected {mono_seconds / projected:.2f}x (target >= {0.7 * plan['chunks']:.1f} "
              f"= 0.7 x {plan['chunks']} chunks; {mono_seconds / shared:.2f}x from the "
              f"2-way run's times)")  # fmt: skip
        chunked = stack.fetch(f"bench/chunked/{output}", work / f"chunked-{output}")
        a, b = fill_video_bit_rate(mono, probe(mono)), fill_video_bit_rate(chunked, probe(chunked))
        ratio = b.video.bit_rate / a.video.bit_rate - 1
        print(f"5. video bitrate {b.video.bit_rate / 1000:.0f} kb/s chunked vs "
              f"{a.video.bit_rate / 1000:.0f} kb/s monolithic ({ratio:+.1%}, target <= +3 %); "
              f"PSNR chunked {psnr(source, chunked):.2f} dB vs monolithic {psnr(source, mono):.2f} dB "
              f"(target within 0.15 dB); frames {frames(chunked)} vs {frames(mono)}")  # fmt: skip

        ladder_job, ladder_tasks = stack.job(LADDER, SOURCE, "s3:///bench/ladder/")
        encode_tasks = [t for t in ladder_tasks if t["kind"] == "encode"]
        cpu = sum(t["cpu_seconds"] for t in encode_tasks)
        ladder = next(lad for name, lad in LADDERS if name == LADDER)
        recipe = ladder_recipe(ladder, 720, Fraction(30), threads=1)
        separate = 0.0
        for video in recipe.videos:
            args = ["-map", "0:v:0", "-vf", ",".join(video.filters), *video.args, "-an"]
            separate += direct(args, source, work / f"sep-{video.name}.mp4")[1]
        lwall = _time(ladder_job["phases"]["completed"]) - _time(ladder_job["created_date"])
        shape = "one decode per chunk" if encode_tasks[0]["rendition"] is None else "one each"
        print(f"ladder {LADDER}: {len(recipe.videos)} renditions in {len(encode_tasks)} encode "
              f"tasks ({shape}): their CPU {cpu:.1f} s vs each rendition of the whole source "
              f"encoded separately {separate:.1f} s ({cpu / separate:.2f}x); "
              f"job wall time {lwall:.1f} s")  # fmt: skip
    print(f"machine load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
