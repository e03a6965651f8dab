"""`make bench-scale`: the critical path of a 10-minute 1080p30 ladder job, measured here in
CPU seconds and projected onto Lambda with 1,000 invocations at once, and the same for a
2-hour source planned from synthetic probe facts.

1. A 10-minute 1080p30 mezzanine (noise, motion, audio) is generated once into a cache
   (BENCH_CACHE, default /tmp/oe-bench-scale; ultrafast, so generating it is quick).
2. It is probed and planned with the seeded 4-rung H.264 ladder (the plan code is pure).
3. The tasks of a sample of real chunks (BENCH_SAMPLE_CHUNKS, default 2, consecutive from
   the first) are run as the tasks run them: split, every rendition's encode, thumbnails,
   and the job's audio; then the assemble over those chunks (join, mux, package). Each
   ffmpeg run's CPU seconds come from wait4 (as tasks record cpu_seconds), so the figures
   hold on a shared, loaded machine.
4. The projection: CPU seconds here over the Lambda factor below, plus the I/O and
   invocation overheads stated below, scheduled on 1,000 invocations (each task starts once
   its piece is cut and a slot is free, longest first), then the assemble after the last.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from chalicelib.graph import build, source_read
from chalicelib.graph.plan import AUDIO_RATE, Kind, Limits, Options, Plan, Source, plan
from chalicelib.media import argv, steps
from chalicelib.media.probe import ffmpeg_exe, probe
from chalicelib.presets.catalog import LADDERS
from chalicelib.presets.recipe import Recipe, ladder_recipe
from chalicelib.store import storage

CACHE = Path(os.environ.get("BENCH_CACHE") or Path(tempfile.gettempdir()) / "oe-bench-scale")
SAMPLE = int(os.environ.get("BENCH_SAMPLE_CHUNKS", "2"))
LADDER = "h264_ladder_hls_dash"
THREADS = 2  # a 3008 MB function sees 2 vCPUs: each encode runs two threads
# --- the Lambda model (stated, conservative) ------------------------------------------
# AWS gives a function one full vCPU at 1,769 MB, so 3008 MB is 1.70 vCPU (shown as 2).
# A Lambda vCPU is taken as 0.8 of one of this machine's cores (a hyperthread of a
# 2.5-3.0 GHz Xeon/EPYC against this host's dedicated EPYC core: slower, never faster),
# and two encode threads as 85 % efficient. Encodes (two threads): 1.70 x 0.8 x 0.85 =
# 1.16 of this machine's cores; single-threaded steps (stream copy, AAC): 0.8.
VCPU = 3008 / 1769
PER_VCPU = 0.8
THREAD_EFFICIENCY = 0.85
ENCODE_FACTOR = min(VCPU, THREADS) * PER_VCPU * THREAD_EFFICIENCY
SERIAL_FACTOR = PER_VCPU
S3_BYTES_PER_SECOND = 75e6  # one invocation to or from S3 (~600 Mb/s, a usual measure)
PUT_SECONDS = 0.03  # one small PUT's (or copy's) round trip in region; 16 are in flight
COPY_BYTES_PER_SECOND = 100e6  # one large object copied inside S3, in parts
IN_FLIGHT = 16
TASK_START_SECONDS = 1.5  # SQS to a warm-ish invocation, claim write, lease (cold: more)
HOP_SECONDS = 1.0  # a fan-in: the finisher's write, its message, the next invocation
USD_PER_GB_SECOND = 0.0000166667
USD_PER_REQUEST = 0.0000002
MEMORY_GB = 3008 / 1024
BUDGET_SECONDS = 780.0  # OE_LAMBDA_BUDGET_SECONDS: what one invocation may spend


class Meter:
    """A steps.Run that runs ffmpeg and adds up its CPU seconds from wait4."""

    def __init__(self) -> None:
        self.cpu = 0.0

    def __call__(self, args: list[str], cwd: Path, duration: float | None = None) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [ffmpeg_exe(), *steps.FFMPEG_PREFIX, *args], cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        errors = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu += usage.ru_utime + usage.ru_stime
        if process.returncode:
            raise steps.MediaFailed(f"ffmpeg failed: {errors.decode()[-2000:]}")

    def take(self) -> float:
        cpu, self.cpu = self.cpu, 0.0
        return cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def source() -> Path:
    """The cached mezzanine: 600 s of 1920x1080 at 30 fps, 12 Mb/s, seeded noise, a tone."""
    path = CACHE / "mezz-600s-1080p30.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} (once; about 900 MB) ...", flush=True)
    part = path.with_suffix(".part.mp4")
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30,noise=alls=7:allf=t:all_seed=42",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "600",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "12M", "-maxrate", "12M",
         "-bufsize", "12M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(part)],
        check=True,
    )  # fmt: skip
    part.rename(path)
    return path


def ladder_plan(src: Source, chunk_seconds: float, packages: bool = True) -> Plan:
    ladder = next(lad for name, lad in LADDERS if name == LADDER)
    recipe = ladder_recipe(ladder, src.height, src.fps, THREADS)
    # The stage's own limits (OE_* settings: audio pieces, packages), at this chunk length.
    limits = replace(build.limits(), chunk_seconds=chunk_seconds, concurrency=0)
    if not packages:
        limits = replace(limits, package_min_seconds=math.inf)
    return plan(src, recipe.work(2.0), Options(), limits)


@dataclass
class Measured:
    """CPU seconds (and bytes) per second of source, per step, from the sampled chunks."""

    probe_cpu: float
    plan_cpu: float
    split_per_second: float  # cutting a piece (stream copy)
    encode_per_second: dict[str, float]  # each rendition alone
    decode_per_second: float  # one decode of the piece (what encoding together saves)
    thumbs_per_second: float
    audio_per_second: float  # the audio task: AAC encode of the extracted stream
    extract_per_second: float  # the job's run: the audio stream-copied out of the source
    piece_bytes_per_second: float
    output_bytes_per_second: dict[str, float] = field(default_factory=dict)  # encoded chunks
    # The package task of each rendition: join + mux + segments (CPU), what it stores.
    package_per_second: dict[str, float] = field(default_factory=dict)
    packaged_bytes_per_second: dict[str, float] = field(default_factory=dict)
    packaged_files_per_second: dict[str, float] = field(default_factory=dict)
    mp4_bytes_per_second: float = 0.0  # the progressive MP4s (copied in parts)
    # The assemble after them: the audio packaged, the sprite, the manifests.
    finish_per_second: float = 0.0
    finish_files_per_second: float = 0.0  # audio segments, thumbnails, manifests
    finish_bytes_per_second: float = 0.0


def measure_work(path: Path, work: Path) -> tuple[Measured, Plan, Source]:
    """The sampled chunks' tasks, run once and kept in the cache (rerun: read back)."""
    meter = Meter()
    before = children_cpu()
    info = probe(path)
    probe_cpu = children_cpu() - before
    started = time.process_time()
    src = build.source_of(info)
    p = ladder_plan(src, Limits().chunk_seconds)
    plan_cpu = time.process_time() - started
    kept = work / "measured.json"
    if kept.exists():
        measured = Measured(**json.loads(kept.read_text()))
        return replace(measured, probe_cpu=probe_cpu, plan_cpu=plan_cpu), p, src
    recipe = _recipe(src)
    assert p.fps is not None and recipe.ladder is not None
    chunks = p.chunks[:SAMPLE]
    span = sum((c.end or src.duration) - c.start for c in chunks)
    print(f"sampling {len(chunks)} chunks of {span / len(chunks):.0f} s ...", flush=True)
    cut = [steps.split(path, [steps.Seam(c.index, c.start, c.end)], work / "pieces", meter)[0]
           for c in chunks]  # fmt: skip
    split_cpu = meter.take()
    encode: dict[str, float] = {}
    for chunk, piece in zip(chunks, cut, strict=True):
        seam = steps.Seam(chunk.index, chunk.start, chunk.end)
        for video in recipe.videos:
            out = work / "out" / video.name / f"{chunk.index:04d}.mp4"
            out.parent.mkdir(parents=True, exist_ok=True)
            steps.encode_chunk(piece, out, video, seam, p.fps, meter)
            encode[video.name] = encode.get(video.name, 0.0) + meter.take()
            print(f"  chunk {chunk.index} {video.name}: {encode[video.name]:.1f} CPU s so far",
                  flush=True)  # fmt: skip
    meter(["-threads", str(THREADS), *argv.own_input(cut[0]), "-map", "0:v:0", "-f", "null", "-"],
          work)  # fmt: skip
    decode = meter.take() / ((chunks[0].end or src.duration) - chunks[0].start)
    t = recipe.ladder.thumbnails
    assert t is not None
    for chunk, piece in zip(chunks, cut, strict=True):
        seam = steps.Seam(chunk.index, chunk.start, chunk.end)
        steps.chunk_thumbnails(piece, work / "thumbs", seam, p.fps, t.every_seconds, t.width,
                               src.duration, 1080, meter)  # fmt: skip
    thumbs_cpu = meter.take()
    audio_piece, audio = work / "audio.mka", work / "audio.m4a"
    meter(argv.extract_audio(path, audio_piece), work)
    extract_cpu = meter.take()
    steps.encode_audio(audio_piece, audio, recipe, meter, src.duration)
    audio_cpu = meter.take()
    short = work / "audio-span.m4a"  # the audio of the sampled span, for their assemble
    meter([*argv.own_input(audio), "-t", f"{span:.3f}", "-c", "copy", f"file:{short}"], work)
    measured = Measured(
        probe_cpu=probe_cpu, plan_cpu=plan_cpu, split_per_second=split_cpu / span,
        encode_per_second={k: v / span for k, v in encode.items()},
        decode_per_second=decode, thumbs_per_second=thumbs_cpu / span,
        audio_per_second=audio_cpu / src.duration, extract_per_second=extract_cpu / src.duration,
        piece_bytes_per_second=sum(f.stat().st_size for f in cut) / span,
    )  # fmt: skip
    kept.write_text(json.dumps(asdict(measured)))
    return measured, p, src


def _recipe(src: Source) -> Recipe:
    return ladder_recipe(next(lad for n, lad in LADDERS if n == LADDER), src.height, src.fps,
                         THREADS)  # fmt: skip


def _cpu(meter: Meter, before: float, started: float) -> float:
    return meter.take() + (children_cpu() - before) + (time.process_time() - started)


def measure_assemble(m: Measured, p: Plan, src: Source, work: Path) -> Measured:
    """The package task of each rendition and the assemble after them, over the sampled
    chunks, as chalicelib.graph.packaging runs them (ffprobe and Python counted too)."""
    meter, recipe = Meter(), _recipe(src)
    assert p.fps is not None and recipe.ladder is not None and recipe.ladder.thumbnails
    chunks = p.chunks[:SAMPLE]
    span = sum((c.end or src.duration) - c.start for c in chunks)
    size = lambda files: sum(f.stat().st_size for f in files)  # noqa: E731
    audio = work / "audio-span.m4a"
    cpu, stored, files, parts = {}, {}, {}, {}
    mp4 = 0
    for video in recipe.videos:
        folder = work / "package" / video.name
        shutil.rmtree(folder, ignore_errors=True)
        chunk_files = [work / "out" / video.name / f"{c.index:04d}.mp4" for c in chunks]
        before, started = children_cpu(), time.process_time()
        joined = steps.join(chunk_files, work / "out" / f"{video.name}-joined.mp4", meter)
        steps.package_rendition(video, joined, audio, recipe, p.fps, folder, meter)
        cpu[video.name] = _cpu(meter, before, started) / span
        made = [f for f in folder.rglob("*") if f.is_file()]
        stored[video.name] = size(made) / span
        files[video.name] = len(made) / span
        parts[video.name] = size(chunk_files) / span
        mp4 += size([f for f in made if f.name == f"{video.name}.mp4"])
    publish = work / "publish"
    shutil.rmtree(publish, ignore_errors=True)
    (publish / "thumbnails").mkdir(parents=True)
    for picture in (work / "thumbs" / "thumbnails").glob("*.jpg"):
        shutil.copy(picture, publish / "thumbnails" / picture.name)
    before, started = children_cpu(), time.process_time()
    sound = steps.package_audio(audio, recipe, p.fps, publish, meter)
    variants = [steps.describe_variant(work / "package" / v.name, v.name,
                               work / "out" / f"{v.name}-joined.mp4", p.fps)
                for v in recipe.videos]  # fmt: skip
    steps.write_manifests(variants, sound, recipe, publish)
    steps.sprite(publish, recipe.ladder.thumbnails.every_seconds, span, meter)
    finish = _cpu(meter, before, started)
    made = [f for f in publish.rglob("*") if f.is_file()]
    return replace(
        m, output_bytes_per_second=parts, package_per_second=cpu,
        packaged_bytes_per_second=stored, packaged_files_per_second=files,
        mp4_bytes_per_second=mp4 / span, finish_per_second=finish / span,
        finish_files_per_second=len(made) / span, finish_bytes_per_second=size(made) / span,
    )  # fmt: skip


@dataclass(frozen=True)
class Projection:
    seconds: float
    first_chunk: float  # the first encode starts
    fan_out: float  # the job's own run: download, probe, plan, audio, every piece cut and sent
    longest: dict[str, float]  # the longest task of each kind (Lambda seconds)
    work_end: float  # the last work task ends
    assemble: float  # the assemble and publish, after the fan-in
    tasks: int
    cost_usd: float
    last: str  # the kind of the work task that ends last


def transfer(size: float) -> float:
    return size / S3_BYTES_PER_SECOND


def way(source_bytes: float, container: str) -> str:
    """How the job's run reads this source, as main decides (chalicelib.graph.source_read)."""
    located = source_read.Located(storage.S3Location("input", "mezz.mp4"), int(source_bytes), None)
    return str(source_read.choose(located, container, True)["way"])


def project(p: Plan, src: Source, m: Measured, source_bytes: float, ranged: bool) -> Projection:
    """The plan's tasks on 1,000 invocations, from what was measured."""
    duration = src.duration
    # The job's own run. Ranged: probed by range, planned, the chunk tasks sent at once (each
    # reads its own range), the audio then copied out by range (the whole file is read).
    # Downloaded: the whole source fetched, probed, planned; the audio copied out and
    # stored, then each chunk's piece cut and stored in turn.
    clock = TASK_START_SECONDS
    if not ranged:
        clock += transfer(source_bytes)
    clock += (m.probe_cpu + m.plan_cpu) / SERIAL_FACTOR + (0.5 if ranged else 0.0)
    ready: dict[str, float] = {}
    if ranged:
        ready |= {t.id: clock + 0.2 for t in p.work_tasks if t.chunk is not None}
        clock += transfer(source_bytes)  # the audio copied out by range
    audio_tasks = [t for t in p.tasks if t.kind is Kind.AUDIO]
    if audio_tasks:
        clock += m.extract_per_second * duration / SERIAL_FACTOR + transfer(
            duration * 128e3 / 8 * 1.05
        )
        for t in audio_tasks:
            ready[t.id] = clock
    for chunk in p.chunks if not ranged else ():
        length = (chunk.end or duration) - chunk.start
        clock += m.split_per_second * length / SERIAL_FACTOR
        clock += transfer(m.piece_bytes_per_second * length)
        for t in p.tasks:
            if t.chunk == chunk.index:
                ready[t.id] = clock
    fan_out = clock
    seconds: dict[str, float] = {}
    for t in p.work_tasks:
        if t.kind is Kind.AUDIO:
            span = t.weight / AUDIO_RATE
            run = m.audio_per_second * span / SERIAL_FACTOR
            io = transfer(span * 128e3 / 8 * 2)
        else:
            assert t.chunk is not None
            chunk = p.chunk(t.chunk)
            length = (chunk.end or duration) - chunk.start
            io = transfer(m.piece_bytes_per_second * length)
            if t.kind is Kind.THUMBNAILS:
                run = m.thumbs_per_second * length / ENCODE_FACTOR
            else:
                names = t.renditions or (t.rendition,)
                cpu = sum(m.encode_per_second[n] for n in names)
                cpu -= (len(names) - 1) * m.decode_per_second
                run = cpu * length / ENCODE_FACTOR
                share = sum(m.encode_per_second[n] for n in names) / sum(
                    m.encode_per_second.values()
                )
                io += transfer(sum(m.output_bytes_per_second.values()) * length * share)
        seconds[t.id] = TASK_START_SECONDS + io + run
    # List scheduling: a task starts once its piece is stored and a slot is free; among the
    # ready ones, the longest first (the fan-out sends them so).
    slots = [0.0] * 1000
    ends: dict[str, float] = {}
    order = sorted(p.work_tasks, key=lambda t: (ready[t.id], -seconds[t.id]))
    for t in order:
        free = heapq.heappop(slots)
        start = max(free, ready[t.id])
        ends[t.id] = start + seconds[t.id]
        heapq.heappush(slots, ends[t.id])
    first = min(ready[t.id] for t in p.work_tasks if t.kind is Kind.ENCODE)
    work_end = max(ends.values())
    # Each rendition's package: its parts down (16 at once), joined, muxed and cut (stream
    # copy: one thread), its files up to the workspace. Without packages one task does all.
    package = {
        name: TASK_START_SECONDS
        + transfer(m.output_bytes_per_second[name] * duration)
        + transfer(m.packaged_bytes_per_second[name] * duration)
        + m.packaged_files_per_second[name] * duration / IN_FLIGHT * PUT_SECONDS
        + m.package_per_second[name] * duration / SERIAL_FACTOR
        for name in m.package_per_second
    }
    # The assemble after them: the audio packaged, the thumbnails fetched and tiled, the
    # manifests written, every packaged file copied inside S3 (the MP4s in parts) and the
    # rest uploaded, 16 at once.
    files = sum(m.packaged_files_per_second.values()) + m.finish_files_per_second
    finish = (
        TASK_START_SECONDS
        + transfer(m.finish_bytes_per_second * duration)
        + files * duration / IN_FLIGHT * PUT_SECONDS
        + m.mp4_bytes_per_second * duration / COPY_BYTES_PER_SECOND
        + m.finish_per_second * duration / SERIAL_FACTOR
    )
    if [t for t in p.tasks if t.kind is Kind.PACKAGE]:
        assemble = max(package.values()) + HOP_SECONDS + finish
    else:  # one task: every rendition in turn, then the rest, all through one invocation
        assemble = sum(package.values()) + finish - TASK_START_SECONDS * len(package)
        assemble += transfer(sum(m.packaged_bytes_per_second.values()) * duration)
    longest: dict[str, float] = {}
    for t in p.work_tasks:
        longest[str(t.kind)] = max(longest.get(str(t.kind), 0.0), seconds[t.id])
    longest["package"] = max(package.values())
    longest["assemble"] = assemble
    billed = sum(seconds.values()) + sum(package.values()) + finish + fan_out
    cost = billed * MEMORY_GB * USD_PER_GB_SECOND + (len(p.tasks) + 1) * USD_PER_REQUEST
    total = work_end + HOP_SECONDS + assemble
    last = str(max(p.work_tasks, key=lambda t: ends[t.id]).kind)
    return Projection(total, first, fan_out, longest, work_end, assemble, len(p.tasks), cost, last)


def main() -> int:
    load = os.getloadavg()
    path = source()
    work = CACHE / f"sample-{SAMPLE}"
    work.mkdir(parents=True, exist_ok=True)
    m, p, src = measure_work(path, work)
    m = measure_assemble(m, p, src, work)
    source_bytes = path.stat().st_size
    rate = source_bytes / src.duration
    two_hours = replace(src, duration=7200.0)
    read = way(source_bytes, probe(path).container or "mov")
    rows = []
    for seconds, packages in ((20.0, False), (20.0, True), (12.0, True), (8.0, True)):
        for name, facts, size in (("10 min", src, source_bytes), ("2 h", two_hours, rate * 7200)):
            planned = ladder_plan(facts, seconds, packages)
            ranged = way(size, probe(path).container or "mov") == "ranged"
            rows.append((name, seconds, packages, project(planned, facts, m, size, ranged)))
    print(f"\nmachine: {os.cpu_count()} cores, load {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after (figures are CPU seconds from wait4)")  # fmt: skip
    print(f"source read: {read} (chalicelib.graph.source_read, as main decides for this source)")
    print(f"Lambda factor: encodes {ENCODE_FACTOR:.2f} of this machine's cores per invocation "
          f"(3008/1769 = {VCPU:.2f} vCPU x {PER_VCPU} per vCPU x {THREAD_EFFICIENCY} for 2 "
          f"threads), serial steps {SERIAL_FACTOR}; S3 {S3_BYTES_PER_SECOND / 1e6:.0f} MB/s per "
          f"invocation, {TASK_START_SECONDS} s per task start, {HOP_SECONDS} s per fan-in")  # fmt: skip
    print("measured CPU s per source second: " + ", ".join(
        f"{k} {v:.3f}" for k, v in m.encode_per_second.items()
    ) + f"; decode {m.decode_per_second:.3f}, thumbnails {m.thumbs_per_second:.3f}, audio "
        f"{m.audio_per_second:.3f}, split {m.split_per_second:.4f}; package " + ", ".join(
        f"{k} {v:.4f}" for k, v in m.package_per_second.items()
    ) + f", then the assemble {m.finish_per_second:.4f}; probe {m.probe_cpu:.2f} s, plan "
        f"{m.plan_cpu:.3f} s")  # fmt: skip
    head = (f"{'source':>7} {'chunk s':>7} {'tasks':>6} {'1st chunk':>9} {'fan-out':>8} "
            f"{'encode':>7} {'thumbs':>7} {'audio':>7} {'work end':>8} {'package':>8} {'assemble':>8} "
            f"{'total':>7} {'USD':>7}")  # fmt: skip
    print(head)
    for name, seconds, packages, r in rows:
        name += "" if packages else "*"
        print(f"{name:>7} {seconds:>7.0f} {r.tasks:>6} {r.first_chunk:>9.1f} {r.fan_out:>8.1f} "
              f"{r.longest.get('encode', 0):>7.1f} {r.longest.get('thumbnails', 0):>7.1f} "
              f"{r.longest.get('audio', 0):>7.1f} {r.work_end:>8.1f} {r.longest['package']:>8.1f} {r.assemble:>8.1f} "
              f"{r.seconds:>7.1f} {r.cost_usd:>7.3f}")  # fmt: skip
    print("* one assemble task for the whole ladder (no package tasks), for comparison")
    default = {name: r for name, s, pk, r in rows if s == Limits().chunk_seconds and pk}
    ten, two = default["10 min"], default["2 h"]
    print(f"floor of the 10-minute job: the {ten.last} task ends last, at {ten.work_end:.1f} s "
          f"(the first chunk starts at {ten.first_chunk:.1f} s, the fan-out ends at "
          f"{ten.fan_out:.1f} s), then {ten.assemble:.1f} s to the published package; a 2-hour ladder's "
          f"assemble takes {two.assemble:.0f} s of the {BUDGET_SECONDS:.0f} s budget "
          f"({two.assemble / BUDGET_SECONDS:.0%})")  # fmt: skip
    print(json.dumps({
        "projected_seconds_10min_1080p_ladder": round(ten.seconds, 1),
        "projected_seconds_2h_1080p_ladder": round(two.seconds, 1),
        "time_to_first_chunk_seconds": round(ten.first_chunk, 1),
        "assemble_publish_seconds": round(ten.assemble, 1),
        "assemble_publish_seconds_2h": round(two.assemble, 1),
        "assemble_budget_seconds": BUDGET_SECONDS,
        "tasks_10min": ten.tasks, "tasks_2h": two.tasks,
        "cost_usd_10min": round(ten.cost_usd, 4), "cost_usd_2h": round(two.cost_usd, 4),
        "chunk_seconds": Limits().chunk_seconds, "lambda_encode_factor": round(ENCODE_FACTOR, 3),
        "source_read": read,
        "load_average": round(os.getloadavg()[0], 2),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
