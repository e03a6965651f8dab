"""From a probed job to its graph, and back: planning a job, fanning it out, reading it again.

`plan_job` turns the job's preset and probe into a `Recipe` (media) and a `Plan` (pure);
`fan_out` (run by the job's own run, which holds its lease) cuts the source into pieces,
stores the tasks, sends one message per ready task and moves the job to encoding; `Graph.of`
rebuilds the same recipe and plan from the job item inside each task.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from chalicelib.config import graph_settings, runtime
from chalicelib.graph import audio, audio_cuts, ladder_choice, measures
from chalicelib.graph.audio import AUDIO_OUTPUT, AUDIO_PIECE  # noqa: F401 - kinds reads them
from chalicelib.graph.plan import Kind, Limits, Mode, Options, Plan, Source, TaskSpec, plan
from chalicelib.graph.workspace import Workspace
from chalicelib.media import steps
from chalicelib.media.probe import MediaError, MediaInfo, fill_video_bit_rate, probe
from chalicelib.presets import quality
from chalicelib.presets.ladder import Ladder
from chalicelib.presets.recipe import Recipe, VideoRecipe, ladder_recipe, single_recipe
from chalicelib.presets.spec import PresetSpec, parse_preset_data
from chalicelib.store import messages, queues
from chalicelib.store.models import Job, Task

log = logging.getLogger("openencoder.graph")
TASK_ITEM_DAYS = 30
# Kinds another task releases (the fan-in, a chunk's encode): stored waiting, never sent here.
RELEASED = (Kind.ASSEMBLE, Kind.QUALITY, Kind.PACKAGE)
# Common frame rates as ffmpeg prints them (two decimals) and what they stand for.
_NTSC = {
    23.98: Fraction(24000, 1001),
    29.97: Fraction(30000, 1001),
    59.94: Fraction(60000, 1001),
    47.95: Fraction(48000, 1001),
    119.88: Fraction(120000, 1001),
}


def frame_rate(fps: float | None) -> Fraction | None:
    if not fps or fps <= 0:
        return None
    return _NTSC.get(round(fps, 2)) or Fraction(fps).limit_denominator(1001)


def recipe_for(
    snapshot: dict[str, Any], height: int | None, fps: Fraction | None, chosen: Any = None
) -> Recipe:
    """The preset a job was made with, as a media recipe (a per-title ladder as `chosen`)."""
    threads = graph_settings().encode_threads
    document = json.loads(snapshot["data"])
    if isinstance(document, dict) and "ladder" in document:
        ladder = ladder_choice.applied(Ladder.model_validate(document["ladder"]), chosen)
        return ladder_recipe(ladder, height, fps, threads)
    spec = parse_preset_data(snapshot["data"])
    return single_recipe(
        spec.args, snapshot["output"], height, two_pass=spec.two_pass, threads=threads
    )


def plain(value: Any) -> dict[str, Any]:
    """A MapAttribute (or nothing) as a plain dict."""
    if value is None:
        return {}
    return value.as_dict() if hasattr(value, "as_dict") else dict(value)


def _number(value: Any) -> int | float:
    return int(value) if value == int(value) else float(value)


def _snapshot(job: Job) -> dict[str, Any]:
    return {"data": job.preset_snapshot["data"], "output": job.preset_snapshot["output"]}


def limits(*, droplets: bool = False) -> Limits:
    g = graph_settings()
    return Limits(
        chunk_min_seconds=g.chunk_min_seconds,
        chunk_seconds=g.chunk_seconds,
        audio_chunk_seconds=g.audio_chunk_seconds,
        lambda_seconds=g.lambda_budget_seconds,
        lambda_usd_per_second=g.lambda_usd_per_second,
        droplets=droplets,
        droplet_usd_per_hour=g.droplet_usd_per_hour,
        concurrency=g.encode_concurrency,
        package_min_seconds=g.package_min_seconds,
    )


def source_of(info: MediaInfo) -> Source:
    video, a, start = info.video, info.audio, getattr(info, "start", 0.0) or 0.0
    return Source(
        duration=info.duration or 0.0,
        fps=frame_rate(video.fps if video else None),
        height=video.height if video else None,
        has_video=video is not None,
        has_audio=info.audio is not None,
        start=start,
        audio_rate=audio_cuts.exact_source(info.container, a.codec, a.sample_rate, start)
        if a
        else 0,
    )


def plan_job(job: Job, info: MediaInfo, chosen: Any = None) -> tuple[Plan, Recipe]:
    """`chosen`: a per-title ladder's choice (ladder_choice), kept on the plan's details."""
    source = source_of(info)
    recipe = recipe_for(_snapshot(job), source.height, source.fps, chosen)
    raw = plain(job.options)
    options = Options(parallel=raw.get("parallel", "auto"), priority=raw.get("priority", "speed"))
    if recipe.ladder is not None and source.has_video and not recipe.videos:
        raise MediaError("the ladder has no rendition this source can make")
    if recipe.ladder is not None and not source.has_video:
        raise MediaError("a ladder needs a source with video")
    droplets = options.priority == "cost" and _droplets_configured()
    work = recipe.work(graph_settings().encode_speed)
    bounds = limits(droplets=droplets)
    wanted = quality.wanted(raw, job.preset_snapshot["data"])
    planned = plan(source, work, options, bounds)
    if chosen:
        planned.details["ladder"] = chosen
    return measures.with_measures(planned, wanted, source, bounds), recipe


def _droplets_configured() -> bool:
    """DigitalOcean has a token and the pool may grow (only asked for priority cost)."""
    from chalicelib.config import settings
    from chalicelib.store.secret_params import digitalocean_token

    return settings().droplet_max > 0 and bool(digitalocean_token())


# --- fan-out: the job's run, after probing --------------------------------------------


def task_items(job: Job, p: Plan, queue: str) -> list[Task]:
    attempt = int(job.attempt)
    expires = timedelta(days=TASK_ITEM_DAYS)  # DynamoDB's TTL removes old attempts' tasks
    return [
        Task(
            int(job.id),
            Task.make_key(attempt, spec.id),
            task_id=spec.id,
            task_kind=str(spec.kind),
            attempt=attempt,
            order=order,
            chunk=spec.chunk,
            rendition=spec.rendition,
            renditions=list(spec.renditions) or None,
            status="waiting" if spec.kind in RELEASED else "queued",
            queue=queue,
            expires=expires,
        )
        for order, spec in enumerate(p.tasks)
    ]


@dataclass(frozen=True)
class Piece:
    """One stream-copied piece of the source, and the tasks it makes ready."""

    path: Path
    name: str  # in the attempt's workspace
    tasks: tuple[TaskSpec, ...]


def pieces(source: Path, p: Plan, folder: Path, run: steps.Run) -> Iterator[Piece]:
    """The source cut into what the tasks download, in the order they are needed.

    The audio comes first (one task, or its pieces: chalicelib.graph.audio), then each
    chunk's video with its encodes and thumbnails: a chunk's tasks can start while the
    later chunks are still being cut, so the first encode never waits for the whole split.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tasks = tuple(t for t in p.work_tasks if t.kind is Kind.AUDIO)
    yield from (Piece(*piece) for piece in audio.pieces(source, tasks, p, folder, run))
    start = float(p.details.get("source_start") or 0.0)
    for chunk in p.chunks:
        seam = steps.Seam(chunk.index, chunk.start, chunk.end)
        (path,) = steps.split(source, [seam], folder, run, start)
        ready = tuple(t for t in p.work_tasks if t.chunk == chunk.index)
        yield Piece(path, f"pieces/{path.name}", ready)


def longest_first(tasks: Iterable[TaskSpec]) -> list[TaskSpec]:
    """When tasks outnumber the invocations, the long ones start at once and the short
    ones fill in around them."""
    return sorted(tasks, key=lambda t: t.weight, reverse=True)


def send(job: Job, tasks: Iterable[TaskSpec], queue: str) -> None:
    """One message per ready task, longest first, ten per call."""
    batch = [
        messages.TaskMessage(job_id=int(job.id), attempt=int(job.attempt), task=t.id)
        for t in longest_first(tasks)
        if t.kind not in RELEASED
    ]
    queues.send_many(queue, batch)


# Ready tasks are stored and sent fifty at a time: five SendMessageBatch calls of ten (SQS's
# most) and two BatchWriteItem calls of 25 (DynamoDB's), not one short call of each per piece.
FAN_OUT_BATCH = 50
# ... but a short batch goes with the next piece once its oldest task has waited this long.
FAN_OUT_LINGER_SECONDS = 1.0


class FanOut:
    """Tasks made ready piece by piece, handed to `flush` (store, then send) in batches.

    The first piece's tasks go at once, so the first encode never waits for a batch; later
    ones wait only while their batch is short and younger than FAN_OUT_LINGER_SECONDS
    (looked at as each piece is ready: a slow piece sends what waited for it along with it).
    """

    def __init__(
        self,
        flush: Callable[[list[TaskSpec]], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flush = flush
        self._clock = clock
        self.pending: list[TaskSpec] = []
        self.since = 0.0  # when the oldest pending task became ready
        self.flushed = 0  # tasks handed on so far

    def add(self, tasks: Iterable[TaskSpec]) -> None:
        if not self.pending:
            self.since = self._clock()
        self.pending.extend(tasks)
        if not self.flushed or self._clock() - self.since >= FAN_OUT_LINGER_SECONDS:
            self.flush()
        elif len(self.pending) >= FAN_OUT_BATCH:
            self.flush(whole=True)

    def flush(self, *, whole: bool = False) -> None:
        """Hand on what is pending (`whole`: only full batches, the rest keeps waiting)."""
        count = len(self.pending) // FAN_OUT_BATCH * FAN_OUT_BATCH if whole else len(self.pending)
        if not count:
            return
        ready, self.pending = self.pending[:count], self.pending[count:]
        self._flush(ready)
        # Counted once handed on: a fan-out that breaks before any message is out removes
        # its pieces (nobody reads them), as it did piece by piece.
        self.flushed += len(ready)
        self.since = self._clock()


def queue_for(p: Plan) -> str:
    return "long" if p.mode is Mode.DROPLET else "encode"


# --- a task's view of its job ---------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    plan: Plan
    recipe: Recipe
    duration: float
    source_start: float
    poster_height: int
    source_size: tuple[int, int] | None = None  # what a rendition is measured against

    def metrics(self) -> tuple[str, ...]:
        return measures.metrics(self.plan)

    @classmethod
    def of(cls, job: Job, threads: int = 0) -> Graph:
        # DynamoDB hands numbers back as Decimal: whole ones become ints again.
        record = json.loads(json.dumps(plain(job.plan), default=_number))
        p = measures.restore(Plan.from_record(record))
        summary = json.loads(json.dumps(plain(job.probe), default=_number))
        stream = next((s for s in summary.get("streams", []) if s.get("kind") == "video"), {})
        height = int(stream["height"]) if stream.get("height") else None
        size = (int(stream["width"]), height) if stream.get("width") and height else None
        recipe = recipe_for(_snapshot(job), height, p.fps, p.details.get("ladder"))
        duration = float(summary.get("duration") or 0.0)
        tallest = max((v.height or 0 for v in recipe.videos), default=0) or (height or 360)
        start = float(p.details.get("source_start") or 0.0)
        return cls(p, recipe, duration, start, tallest, size)

    def video(self, name: str | None) -> VideoRecipe:
        return self.recipe.video(name)

    def share(self, task_id: str) -> float:
        """This task's share of the job's progress, in percent (the assemble takes the rest)."""
        total = sum(t.weight for t in self.plan.tasks) or 1.0
        return 99.0 * self.plan.task(task_id).weight / total


# --- what the job records of its outputs --------------------------------------------------

_NUMBERED = re.compile(r"\d{4,}\.jpg")  # thumbnails/0001.jpg, ...
_KINDS = {
    ".m3u8": "playlist",
    ".mpd": "manifest",
    ".vtt": "thumbnails-index",
    ".jpg": "thumbnail",
    ".mp4": "video",
    ".m4s": "segment",
    ".webm": "video",
    ".mkv": "video",
    ".mov": "video",
}


def describe_outputs(pairs: list[tuple[Path, Any]]) -> list[dict[str, Any]]:
    """One record per published (file, location), except segments and the numbered
    thumbnails: one summary per folder.

    A two-hour ladder has thousands of segments and, at one picture every 5 s, 1,440
    thumbnails; listing each would outgrow the job item (400 KB) and ask S3 for a version
    of each. The poster, the sprite and its index stay records of their own.
    """
    records: list[dict[str, Any]] = []
    folders: dict[str, dict[str, Any]] = {}
    for path, location in pairs:
        name, suffix, size = path.name, path.suffix.lower(), path.stat().st_size
        folder = path.parent.name
        prefix = location.key.rsplit("/", 1)[0] + "/"
        if suffix == ".m4s" or name == "init.mp4":
            entry = folders.setdefault(
                prefix,
                {"key": prefix, "kind": "segments", "rendition": folder, "count": 0, "size": 0},
            )
            entry["count"] += int(suffix == ".m4s")
            entry["size"] += size
            continue
        if folder == "quality" and suffix == ".json":  # a rendition's per-frame series
            records.append({"key": location.key, "uri": location.uri, "size": size,
                            "kind": "quality", "rendition": path.stem})  # fmt: skip
            continue
        if folder == "thumbnails" and _NUMBERED.fullmatch(name):
            entry = folders.setdefault(
                prefix, {"key": prefix, "kind": "thumbnails", "count": 0, "size": 0}
            )
            entry["count"] += 1
            entry["size"] += size
            continue
        record: dict[str, Any] = {
            "key": location.key,
            "uri": location.uri,
            "size": size,
            "kind": _KINDS.get(suffix, "file"),
        }
        if folder.endswith("p") and folder[:-1].isdigit():
            record["rendition"] = folder
        elif name.endswith("p.mp4") and name[:-5].isdigit():
            record["rendition"] = name[:-4]
        if suffix in (".mp4", ".webm", ".mkv", ".mov"):
            record.update(_media_facts(path))
        records.append(record)
    return records + list(folders.values())


def _media_facts(path: Path) -> dict[str, Any]:
    try:
        info = fill_video_bit_rate(path, probe(path))
    except MediaError:
        return {}
    video = info.video
    stream = video or info.audio
    facts = {
        "duration": info.duration,
        "container": info.container,
        "codec": stream.codec if stream else None,
        "profile": stream.profile if stream else None,
        "width": video.width if video else None,
        "height": video.height if video else None,
        "bit_rate": stream.bit_rate if stream and stream.bit_rate else info.bit_rate,
    }
    return {k: v for k, v in facts.items() if v is not None}


def workspace_of(job: Job) -> Workspace:
    return Workspace(int(job.id), int(job.attempt))


# --- a single run's time, for the host's budget and ffmpeg's limit -----------------


def _output_height(spec: PresetSpec, info: MediaInfo) -> int:
    for arg in spec.args:
        if match := re.search(r"scale=-?\d*:(\d+)", arg):
            return int(match.group(1))
        if match := re.search(r"scale=(\d+):-\d", arg):
            return int(int(match.group(1)) * 9 / 16)
    return info.video.height if info.video and info.video.height else 720


def estimate_encode_seconds(info: MediaInfo, spec: PresetSpec) -> float:
    """Encode time from the source duration, the preset's cost and a measured throughput.

    OE_ENCODE_SPEED is the measured realtime factor of a 720p libx264 encode on
    this host (see bench/encode.py); other sizes scale with the pixel count and
    slower codecs by a factor measured the same way.
    """
    duration = info.duration or 0.0
    pixels = (_output_height(spec, info) / 720) ** 2
    args = " ".join(spec.args)
    codec = 1.0
    for name, factor in (
        ("libvpx-vp9", 4.0),
        ("libx265", 3.0),
        ("libaom-av1", 8.0),
        ("libsvtav1", 2.0),
    ):
        if name in args:
            codec = factor
    passes = 2 if spec.two_pass else 1
    return duration * pixels * codec * passes / runtime().encode_speed
