"""Planning: probe facts + what the preset asks → a graph of tasks. Pure: no I/O, no ffmpeg.

The plan picks a mode (`single`, `chunked`, `droplet`), cuts the timeline into
chunks at multiples of the preset's fixed GOP (so every seam is a keyframe in
every rendition), lists the tasks and records an estimate of time and cost.
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


class Mode(StrEnum):
    SINGLE = "single"  # one task on one Lambda
    CHUNKED = "chunked"  # chunk x rendition tasks on many Lambdas, assembled at the end
    DROPLET = "droplet"  # the long queue: not chunk-safe and too long, or cheaper there


class Kind(StrEnum):
    ENCODE = "encode"
    AUDIO = "audio"
    THUMBNAILS = "thumbnails"
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


@dataclass(frozen=True)
class Work:
    """What the preset asks for, as far as planning cares (built by chalicelib.media.recipe)."""

    renditions: tuple[str, ...]  # names: "720p", ... or the single output's name
    cost: float  # CPU seconds per source second on one vCPU, all renditions together
    chunk_safe: bool
    why_not_chunk_safe: str = ""
    gop_frames: int | None = None  # fixed closed GOP: seams must fall on its multiples
    audio: bool = True
    thumbnails: bool = False
    graph: bool = False  # ladders always run as a graph (packaging needs assembling)


@dataclass(frozen=True)
class Limits:
    chunk_min_seconds: float = 60.0
    chunk_seconds: float = 20.0
    lambda_seconds: float = 840.0  # what one encode invocation may spend encoding
    lambda_usd_per_second: float = 0.0000500  # 3008 MB at the x86 GB-second price
    droplets: bool = False  # DigitalOcean is configured
    droplet_usd_per_hour: float = 0.126  # c-4
    droplet_speedup: float = 3.0  # a droplet's vCPUs against one Lambda vCPU
    max_chunks: int = 400
    overhead_seconds: float = 5.0  # download, probe, upload around each task


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
    rendition: str | None = None
    weight: float = 0.0  # estimated CPU seconds: progress is the done share of the total


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

    @property
    def work_tasks(self) -> tuple[TaskSpec, ...]:
        """The tasks that fan in: everything but the assemble."""
        return tuple(t for t in self.tasks if t.kind != Kind.ASSEMBLE)

    def view(self, tasks_done: int = 0) -> dict[str, Any]:
        """The job view's `plan` (the API contract)."""
        return {
            "mode": str(self.mode),
            "chunks": len(self.chunks),
            "renditions": len(self.renditions),
            "tasks_total": len(self.tasks) if self.graph else 1,
            "tasks_done": tasks_done,
            "estimate": {
                "seconds": round(self.estimate.seconds, 1),
                "cost_usd": round(self.estimate.cost_usd, 6),
            },
        }

    def record(self) -> dict[str, Any]:
        """A JSON-able form stored on the job, read back by `Plan.from_record`."""
        return {
            "mode": str(self.mode),
            "reason": self.reason,
            "graph": self.graph,
            "fps": [self.fps.numerator, self.fps.denominator] if self.fps else None,
            "renditions": list(self.renditions),
            "chunks": [asdict(c) for c in self.chunks],
            "tasks": [{**asdict(t), "kind": str(t.kind)} for t in self.tasks],
            "estimate": asdict(self.estimate),
            "details": self.details,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Plan:
        fps = Fraction(*data["fps"]) if data.get("fps") else None
        return cls(
            mode=Mode(data["mode"]),
            reason=data.get("reason", ""),
            chunks=tuple(Chunk(**{k: _num(v) for k, v in c.items()}) for c in data["chunks"]),
            renditions=tuple(data["renditions"]),
            tasks=tuple(
                TaskSpec(
                    id=t["id"],
                    kind=Kind(t["kind"]),
                    chunk=_num(t.get("chunk")),
                    rendition=t.get("rendition"),
                    weight=float(t.get("weight") or 0),
                )
                for t in data["tasks"]
            ),
            estimate=Estimate(**{k: float(v) for k, v in data["estimate"].items()}),
            fps=fps,
            graph=bool(data.get("graph")),
            details=dict(data.get("details") or {}),
        )

    def chunk(self, index: int) -> Chunk:
        return self.chunks[index]

    def task(self, task_id: str) -> TaskSpec:
        return next(t for t in self.tasks if t.id == task_id)


def _num(value: Any) -> Any:
    """DynamoDB hands numbers back as Decimal: ints stay ints, the rest floats."""
    if value is None or isinstance(value, (int, str)):
        return value
    number = float(value)
    return int(number) if number.is_integer() and not isinstance(value, float) else number


def encode_task_id(chunk: int, rendition: str) -> str:
    return f"encode-{chunk:04d}-{rendition}"


def cut(total_frames: int, fps: Fraction, gop_frames: int, limits: Limits) -> list[Chunk]:
    """Chunk seams at multiples of the GOP, about `chunk_seconds` apart.

    The last seam leaves at least one GOP after it (the frame count is an
    estimate from the duration), and the last chunk runs to the end of the stream.
    """
    per_chunk = max(1, math.floor(limits.chunk_seconds * fps / gop_frames)) * gop_frames
    wanted = max(1, math.ceil(total_frames / per_chunk))
    if wanted > limits.max_chunks:  # a very long source: longer chunks, same seams rule
        per_chunk = math.ceil(total_frames / limits.max_chunks / gop_frames) * gop_frames
    seams = list(range(per_chunk, total_frames - gop_frames + 1, per_chunk))
    firsts = [0, *seams]
    chunks = []
    for index, first in enumerate(firsts):
        end = firsts[index + 1] if index + 1 < len(firsts) else None
        chunks.append(
            Chunk(
                index=index,
                first_frame=first,
                end_frame=end,
                start=float(first / fps),
                end=float(end / fps) if end is not None else None,
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
    if chunkable:
        assert source.fps is not None and work.gop_frames
        total = max(1, round(duration * source.fps))
        chunks = cut(total, source.fps, work.gop_frames, limits)
    else:
        chunks = _whole(source)
    tasks = _tasks(chunks, source, work, duration)
    cpu = sum(t.weight for t in tasks) + limits.overhead_seconds * len(tasks)
    lambda_usd = cpu * limits.lambda_usd_per_second
    if chunkable:
        longest = max(t.weight for t in tasks if t.kind == Kind.ENCODE)
        assemble = next(t.weight for t in tasks if t.kind == Kind.ASSEMBLE)
        seconds = longest + assemble + 3 * limits.overhead_seconds
        mode, reason = Mode.CHUNKED, f"{len(chunks)} chunks of ~{limits.chunk_seconds:g} s"
    else:
        seconds = one_lambda
        mode, reason = Mode.SINGLE, why or "short source"
        if not fits_lambda:
            mode, seconds = Mode.DROPLET, droplet_seconds
            reason = f"{why}; about {one_lambda:.0f} s of encoding is more than Lambda's budget"
    cheaper_on_droplet = limits.droplets and droplet_usd < lambda_usd
    if options.priority == "cost" and cheaper_on_droplet:
        mode, seconds = Mode.DROPLET, droplet_seconds
        reason = "priority cost: the droplet pool is cheaper"
        if chunkable:  # one droplet runs the whole timeline: no chunks needed
            chunks = _whole(source)
            tasks = _tasks(chunks, source, work, duration)
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
    )


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


def _tasks(chunks: list[Chunk], source: Source, work: Work, duration: float) -> list[TaskSpec]:
    per_rendition = work.cost / max(1, len(work.renditions))
    tasks = []
    for chunk in chunks:
        length = (chunk.end if chunk.end is not None else duration) - chunk.start
        for name in work.renditions:
            tasks.append(
                TaskSpec(
                    id=encode_task_id(chunk.index, name),
                    kind=Kind.ENCODE,
                    chunk=chunk.index,
                    rendition=name,
                    weight=max(length, 0.0) * per_rendition,
                )
            )
    if work.audio and source.has_audio:
        tasks.append(TaskSpec(id="audio", kind=Kind.AUDIO, weight=duration * 0.02))
    if work.thumbnails and source.has_video:
        tasks.append(TaskSpec(id="thumbnails", kind=Kind.THUMBNAILS, weight=duration * 0.02))
    tasks.append(TaskSpec(id="assemble", kind=Kind.ASSEMBLE, weight=duration * 0.01))
    return tasks


def progress(plan: Plan, done: set[str]) -> float:
    """Duration-weighted share of finished work, in percent."""
    total = sum(t.weight for t in plan.tasks) or 1.0
    return round(100.0 * sum(t.weight for t in plan.tasks if t.id in done) / total, 2)
