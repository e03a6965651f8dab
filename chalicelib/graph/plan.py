"""Planning: probe facts + what the preset asks → a graph of tasks. Pure: no I/O, no ffmpeg.

The plan picks a mode (`single`, `chunked`, `droplet`), cuts the timeline into
chunks at multiples of the preset's fixed GOP (so every seam is a keyframe in
every rendition), lists the tasks and records an estimate of time and cost.
A ladder's chunk is encoded either one rendition per task (the most parallel) or
all renditions in one task that decodes the chunk once (the least work): the plan
takes whichever finishes sooner on the encode function's concurrency.
Everything here works in frames: chunk seams are frame indexes, and seconds are
derived from them, so a seam never falls between two frames differently in two
renditions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from chalicelib.graph import audio_cuts
from chalicelib.presets.work import Work


class Mode(StrEnum):
    SINGLE = "single"  # one task on one Lambda
    CHUNKED = "chunked"  # chunk x rendition tasks on many Lambdas, assembled at the end
    DROPLET = "droplet"  # the long queue: not chunk-safe and too long, or cheaper there


class Kind(StrEnum):
    ENCODE = "encode"
    AUDIO = "audio"
    THUMBNAILS = "thumbnails"
    QUALITY = "quality"  # one chunk of one rendition measured (chalicelib.graph.measures)
    PACKAGE = "package"  # a rendition joined, muxed, packaged (chalicelib.graph.packaging)
    ASSEMBLE = "assemble"


@dataclass(frozen=True)
class Source:
    """What planning needs to know of the probed source."""

    duration: float
    fps: Fraction | None
    height: int | None
    has_video: bool = True
    has_audio: bool = True
    start: float = 0.0  # the first timestamp (MPEG-TS sources rarely start at 0)
    audio_rate: int = 0  # its audio's sample rate, if that can be cut on samples (audio_cuts)


# The stored plan keeps one seam (a frame number) per chunk: 10,000 are under 60 KB of the
# job item's 400 KB. A 2-hour source at the shortest chunk (a 1 s segment) is 7,200 chunks.
MAX_CHUNKS = 10_000


@dataclass(frozen=True)
class Limits:
    chunk_min_seconds: float = 60.0
    chunk_seconds: float = 20.0
    lambda_seconds: float = 840.0  # what one encode invocation may spend encoding
    lambda_usd_per_second: float = 0.0000500  # 3008 MB at the x86 GB-second price
    droplets: bool = False  # DigitalOcean is configured
    droplet_usd_per_hour: float = 0.126  # c-4
    droplet_speedup: float = 3.0  # a droplet's vCPUs against one Lambda vCPU
    max_chunks: int = MAX_CHUNKS
    overhead_seconds: float = 5.0  # download, probe, upload around each task
    # How many encode invocations run at once (the function's cap; 0: the region's 1,000).
    concurrency: int = 0
    # CPU seconds to decode one second of 720p30 on one vCPU (scaled by pixels and rate).
    decode_seconds_720p: float = 0.05
    audio_chunk_seconds: float = 0.0  # audio pieces about this long (0: one audio task)
    package_min_seconds: float = 120.0  # a ladder this long is packaged per rendition


REGION_CONCURRENCY = 1000  # Lambda's default concurrent executions per region
# CPU seconds per source second of the audio task (decode + AAC at 128k, measured 0.036).
AUDIO_RATE = 0.04


@dataclass(frozen=True)
class Options:
    parallel: str = "auto"  # "auto" | "off"
    priority: str = "speed"  # "speed" | "cost"


@dataclass(frozen=True)
class Chunk:
    index: int
    first_frame: int
    end_frame: int | None  # exclusive; None = to the end of the stream
    start: float  # seconds on the source's own timeline (from its start)
    end: float | None


@dataclass(frozen=True)
class TaskSpec:
    id: str
    kind: Kind
    chunk: int | None = None
    rendition: str | None = None  # an encode of one rendition
    weight: float = 0.0  # estimated CPU seconds: progress is the done share of the total
    renditions: tuple[str, ...] = ()  # every rendition an encode task makes (one or all)


@dataclass(frozen=True)
class Shape:
    """What the task list is derived from (a long ladder has thousands of tasks: not stored)."""

    duration: float
    rates: dict[str, float]  # CPU seconds per source second, per rendition
    decode: float  # CPU seconds per source second to decode the source once
    audio: bool
    thumbnails: bool
    audio_cut: tuple[int, int, int] = (0, 0, 0)  # rate, samples a piece, pre-roll (audio_cuts)
    packages: bool = False  # one package task per rendition before the assemble


@dataclass(frozen=True)
class Estimate:
    seconds: float
    cost_usd: float


@dataclass(frozen=True)
class Plan:
    mode: Mode
    reason: str
    chunks: tuple[Chunk, ...]
    renditions: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]
    estimate: Estimate
    fps: Fraction | None = None
    graph: bool = False  # runs as tasks (else the job's own one-run pipeline)
    details: dict[str, Any] = field(default_factory=dict)
    # Renditions encoded together, one task per chunk and group: each alone, or all at once.
    groups: tuple[tuple[str, ...], ...] = ()
    shape: Shape | None = None

    @property
    def work_tasks(self) -> tuple[TaskSpec, ...]:
        """The tasks that fan in: everything but the packages and the assemble."""
        return tuple(t for t in self.tasks if t.kind not in (Kind.ASSEMBLE, Kind.PACKAGE))

    @property
    def decode_once(self) -> bool:
        """Each chunk's renditions are made by one task from one decode."""
        return any(len(group) > 1 for group in self.groups)

    def record(self) -> dict[str, Any]:
        """A JSON-able form stored on the job, read back by `Plan.from_record`.

        Chunks are stored as their first frames and tasks not at all: both follow from
        the frame rate, the groups and the shape, so the record stays small.
        """
        assert self.shape is not None
        return {
            "mode": str(self.mode),
            "reason": self.reason,
            "graph": self.graph,
            "fps": [self.fps.numerator, self.fps.denominator] if self.fps else None,
            "renditions": list(self.renditions),
            "seams": [c.first_frame for c in self.chunks],
            "groups": [list(g) for g in self.groups],
            "shape": asdict(self.shape) | {"audio_cut": list(self.shape.audio_cut)},
            "tasks_total": len(self.tasks),
            "estimate": asdict(self.estimate),
            "details": self.details,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Plan:
        fps = Fraction(*data["fps"]) if data.get("fps") else None
        estimate = Estimate(**{k: float(v) for k, v in data["estimate"].items()})
        common = dict(
            mode=Mode(data["mode"]),
            reason=data.get("reason", ""),
            renditions=tuple(data["renditions"]),
            estimate=estimate,
            fps=fps,
            graph=bool(data.get("graph")),
            details=dict(data.get("details") or {}),
        )
        if "tasks" in data:  # stored before plans became compact: the tasks are listed
            return cls(**common, **_listed(data))
        raw = data["shape"]  # JSON has no tuples
        shape = Shape(**raw | {"audio_cut": tuple(raw.get("audio_cut", (0, 0, 0)))})
        groups = tuple(tuple(g) for g in data["groups"])
        chunks = _chunks(list(data["seams"]), fps)
        tasks = _tasks(chunks, groups, shape)
        return cls(**common, chunks=tuple(chunks), tasks=tuple(tasks), groups=groups, shape=shape)

    def chunk(self, index: int) -> Chunk:
        return self.chunks[index]

    def task(self, task_id: str) -> TaskSpec:
        return next(t for t in self.tasks if t.id == task_id)


def _listed(data: dict[str, Any]) -> dict[str, Any]:
    """Chunks and tasks of a plan recorded in full (one rendition per encode task)."""
    chunks = tuple(Chunk(**{k: _num(v) for k, v in c.items()}) for c in data["chunks"])
    tasks = tuple(
        TaskSpec(
            id=t["id"],
            kind=Kind(t["kind"]),
            chunk=_num(t.get("chunk")),
            rendition=t.get("rendition"),
            weight=float(t.get("weight") or 0),
            renditions=(t["rendition"],) if t.get("rendition") else (),
        )
        for t in data["tasks"]
    )
    groups = tuple((name,) for name in data["renditions"])
    return {"chunks": chunks, "tasks": tasks, "groups": groups, "shape": None}


def _num(value: Any) -> Any:
    """DynamoDB hands numbers back as Decimal: ints stay ints, the rest floats."""
    if value is None or isinstance(value, (int, str)):
        return value
    number = float(value)
    return int(number) if number.is_integer() and not isinstance(value, float) else number


def encode_task_id(chunk: int, renditions: str | tuple[str, ...]) -> str:
    """`encode-0003-720p` for one rendition; `encode-0003` for all of a chunk's at once."""
    if isinstance(renditions, str):
        return f"encode-{chunk:04d}-{renditions}"
    if len(renditions) == 1:
        return f"encode-{chunk:04d}-{renditions[0]}"
    return f"encode-{chunk:04d}"


def cut(total_frames: int, fps: Fraction, gop_frames: int, limits: Limits) -> list[Chunk]:
    """Chunk seams at multiples of the GOP, about `chunk_seconds` apart; the last seam leaves
    one GOP after it at least (the frame count is an estimate), the last chunk runs to the end."""
    per_chunk = max(1, math.floor(limits.chunk_seconds * fps / gop_frames)) * gop_frames
    wanted = max(1, math.ceil(total_frames / per_chunk))
    if wanted > limits.max_chunks:  # a very long source: longer chunks, same seams rule
        per_chunk = math.ceil(total_frames / limits.max_chunks / gop_frames) * gop_frames
    seams = list(range(per_chunk, total_frames - gop_frames + 1, per_chunk))
    return _chunks([0, *seams], fps)


def _chunks(firsts: list[int], fps: Fraction | None) -> list[Chunk]:
    """Chunks from their first frames; the last runs to the end of the stream."""
    chunks = []
    for index, first in enumerate(firsts):
        end = firsts[index + 1] if index + 1 < len(firsts) else None
        chunks.append(
            Chunk(
                index=index,
                first_frame=first,
                end_frame=end,
                start=float(first / fps) if fps else 0.0,
                end=float(end / fps) if end is not None and fps else None,
            )
        )
    return chunks


def _whole(source: Source) -> list[Chunk]:
    return [Chunk(0, 0, None, 0.0, None)]


def plan(
    source: Source, work: Work, options: Options = Options(), limits: Limits = Limits()
) -> Plan:
    """Route the job and, for a graph, list its chunks and tasks."""
    duration = max(source.duration, 0.0)
    one_lambda = duration * work.cost / 1.0 + limits.overhead_seconds
    fits_lambda = one_lambda <= limits.lambda_seconds
    chunkable, why = _chunkable(source, work, options, limits)
    droplet_seconds = duration * work.cost / limits.droplet_speedup + limits.overhead_seconds
    droplet_usd = droplet_seconds / 3600 * limits.droplet_usd_per_hour
    shape = _shape(source, work, limits, duration)
    cap = limits.concurrency or REGION_CONCURRENCY
    cost_first = options.priority == "cost"
    if chunkable:
        assert source.fps is not None and work.gop_frames
        total = max(1, round(duration * source.fps))
        chunks = cut(total, source.fps, work.gop_frames, limits)
    else:
        chunks = _whole(source)
    groups, tasks = _layout(chunks, work.renditions, shape, cap, fewest=cost_first)
    cpu = sum(t.weight for t in tasks) + limits.overhead_seconds * len(tasks)
    lambda_usd = cpu * limits.lambda_usd_per_second
    if chunkable:
        assemble = next(t.weight for t in tasks if t.kind == Kind.ASSEMBLE)
        seconds = _makespan(tasks, cap) + assemble + 3 * limits.overhead_seconds
        mode, reason = Mode.CHUNKED, f"{len(chunks)} chunks of ~{limits.chunk_seconds:g} s"
        if len(groups) == 1 and len(groups[0]) > 1:
            reason += ", each chunk's renditions made from one decode"
    else:
        seconds = one_lambda
        mode, reason = Mode.SINGLE, why or "short source"
        if not fits_lambda:
            mode, seconds = Mode.DROPLET, droplet_seconds
            reason = f"{why}; about {one_lambda:.0f} s of encoding is more than Lambda's budget"
    cheaper_on_droplet = limits.droplets and droplet_usd < lambda_usd
    if cost_first and cheaper_on_droplet:
        mode, seconds = Mode.DROPLET, droplet_seconds
        reason = "priority cost: the droplet pool is cheaper"
        if chunkable:  # one droplet runs the whole timeline: no chunks needed
            chunks = _whole(source)
            groups, tasks = _layout(chunks, work.renditions, shape, cap, fewest=True)
    cost = droplet_usd if mode == Mode.DROPLET else lambda_usd
    graph = work.graph or len(chunks) > 1
    return Plan(
        mode=mode,
        reason=reason,
        chunks=tuple(chunks),
        renditions=work.renditions,
        tasks=tuple(tasks),
        estimate=Estimate(seconds=seconds, cost_usd=cost),
        fps=source.fps,
        graph=graph,
        details={"source_start": source.start, "gop_frames": work.gop_frames},
        groups=groups,
        shape=shape,
    )


def _shape(source: Source, work: Work, limits: Limits, duration: float) -> Shape:
    names = work.renditions
    costs = work.rendition_costs or tuple(work.cost / max(1, len(names)) for _ in names)
    rates = {name: float(cost) for name, cost in zip(names, costs, strict=True)}
    pixels = ((source.height or 720) / 720) ** 2
    rate = float(source.fps / 30) if source.fps else 1.0
    # A rendition's cost includes one decode; decoding once can save no more than that.
    decode = min(limits.decode_seconds_720p * pixels * rate, min(rates.values(), default=0.0))
    return Shape(
        duration=duration,
        rates=rates,
        decode=decode,
        audio=work.audio and source.has_audio,
        thumbnails=work.thumbnails and source.has_video,
        audio_cut=audio_cuts.layout(work.audio_args, source.audio_rate, limits.audio_chunk_seconds),
        packages=work.graph and len(names) > 1 and duration >= limits.package_min_seconds,
    )


def _makespan(tasks: list[TaskSpec], cap: int) -> float:
    """The time `cap` invocations at once take for the work tasks (a lower bound that
    list scheduling gets close to): the longest task, or the total over the cap."""
    weights = [t.weight for t in tasks if t.kind != Kind.ASSEMBLE] or [0.0]
    return max(max(weights), sum(weights) / max(1, cap))


def _layout(
    chunks: list[Chunk], renditions: tuple[str, ...], shape: Shape, cap: int, *, fewest: bool
) -> tuple[tuple[tuple[str, ...], ...], list[TaskSpec]]:
    """One task per chunk and rendition, or per chunk for all its renditions.

    Alone, the renditions of a chunk run on as many invocations at once; together they
    share one decode, which is less work. Less work wins when the tasks would queue for
    the concurrency anyway (or the job asked for the lower cost); ties go to it too.
    """
    alone = tuple((name,) for name in renditions)
    if len(renditions) <= 1:
        return alone, _tasks(chunks, alone, shape)
    together = (tuple(renditions),)
    split, joined = _tasks(chunks, alone, shape), _tasks(chunks, together, shape)
    if fewest or _makespan(joined, cap) <= _makespan(split, cap):
        return together, joined
    return alone, split


def _chunkable(source: Source, work: Work, options: Options, limits: Limits) -> tuple[bool, str]:
    if options.parallel == "off":
        return False, "parallel is off"
    if not source.has_video:
        return False, "no video to cut"
    if not work.chunk_safe:
        return False, work.why_not_chunk_safe or "preset is not chunk-safe"
    if source.fps is None or not work.gop_frames:
        return False, "frame rate unknown"
    if source.duration < limits.chunk_min_seconds:
        return False, f"shorter than {limits.chunk_min_seconds:g} s"
    return True, ""


def _tasks(
    chunks: list[Chunk], groups: tuple[tuple[str, ...], ...], shape: Shape
) -> list[TaskSpec]:
    duration = shape.duration
    # A group's renditions share one decode: its rate, once (a long plan has many chunks).
    rates = [sum(shape.rates[name] for name in g) - (len(g) - 1) * shape.decode for g in groups]
    tasks = []
    for chunk in chunks:
        length = max((chunk.end if chunk.end is not None else duration) - chunk.start, 0.0)
        for group, rate in zip(groups, rates, strict=True):
            tasks.append(
                TaskSpec(
                    id=encode_task_id(chunk.index, group),
                    kind=Kind.ENCODE,
                    chunk=chunk.index,
                    rendition=group[0] if len(group) == 1 else None,
                    weight=length * rate,
                    renditions=group,
                )
            )
    if shape.thumbnails:  # each decodes its chunk's piece and encodes a few small pictures
        for chunk in chunks:
            length = max((chunk.end if chunk.end is not None else duration) - chunk.start, 0.0)
            tasks.append(
                TaskSpec(
                    id=f"thumbnails-{chunk.index:04d}",
                    kind=Kind.THUMBNAILS,
                    chunk=chunk.index,
                    weight=length * (shape.decode + 0.005),
                )
            )
    if shape.audio:  # one task, or pieces of a long track (each with its pre- and post-roll)
        for name, seconds in audio_cuts.tasks(duration, *shape.audio_cut):
            tasks.append(TaskSpec(id=name, kind=Kind.AUDIO, weight=seconds * AUDIO_RATE))
    for name in shape.rates if shape.packages else ():  # each rendition packaged alone
        tasks.append(TaskSpec(f"package-{name}", Kind.PACKAGE, None, name, duration / 400))
    tasks.append(TaskSpec(id="assemble", kind=Kind.ASSEMBLE, weight=duration * 0.01))
    return tasks


def progress(plan: Plan, done: set[str]) -> float:
    """Duration-weighted share of finished work, in percent."""
    total = sum(t.weight for t in plan.tasks) or 1.0
    return round(100.0 * sum(t.weight for t in plan.tasks if t.id in done) / total, 2)
