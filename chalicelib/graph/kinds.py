"""What each kind of task does with its files: an encode, the audio, a chunk's thumbnails,
a chunk's measurement, and the assemble's media (join the chunks, add the audio, package,
gather each rendition's quality).

Files come from the attempt's workspace through `fetch` and go back through `store`;
ffmpeg runs through `run` (fenced, followed, killable). Nothing here writes a status
or touches a queue: `TaskRun` does that around these steps.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from chalicelib.graph import audio, build, measures, source_read
from chalicelib.graph.audio import joined as joined_audio
from chalicelib.graph.plan import Kind, TaskSpec, encode_task_id
from chalicelib.media import quality, steps
from chalicelib.media.argv import Loopback
from chalicelib.media.scratch import Scratch
from chalicelib.media.steps import FfmpegKilled, MediaFailed
from chalicelib.store import transfers

Fetch = Callable[[str, Path], Path]  # workspace name → local path
Store = Callable[[Path, str], str]  # local path → workspace name


class TaskMedia:
    def __init__(
        self,
        graph: build.Graph,
        scratch: Scratch,
        run: steps.Run,
        *,
        fetch: Fetch,
        store: Store,
        names: Callable[[str], list[str]],
        source: Callable[[], AbstractContextManager[Loopback]] | None = None,
    ) -> None:
        self.graph = graph
        self.scratch = scratch
        self.run = run
        self.fetch = fetch
        self.store = store
        self.names = names
        self.source = source  # the job's source on loopback, when read by range
        self.qualities: dict[str, dict[str, Any]] = {}  # the assemble's, per rendition

    def work(self, spec: TaskSpec) -> list[str]:
        """An encode, audio or thumbnails task: its outputs, stored in the workspace."""
        if spec.kind is Kind.ENCODE:
            return self._encode(spec)
        if spec.kind is Kind.AUDIO:
            return self._audio(spec)
        if spec.kind is Kind.THUMBNAILS:
            return self._thumbnails(spec)
        if spec.kind is Kind.QUALITY:
            return self._quality(spec)
        raise MediaFailed(f"task {spec.id} is not one this host knows how to run")

    def _piece(self, index: int) -> tuple[Path, steps.Seam]:
        chunk = self.graph.plan.chunk(index)
        name = steps.piece_name(index)
        seam = steps.Seam(chunk.index, chunk.start, chunk.end)
        if self.source is not None:  # read by range: cut here, as the split would have
            with self.source() as url:
                start = self.graph.source_start
                return source_read.cut_piece(url, seam, self.scratch.path, self.run, start), seam
        return self.fetch(f"pieces/{name}", self.scratch.path / name), seam

    def _encode(self, spec: TaskSpec) -> list[str]:
        """One rendition of a chunk, or all of them from one decode."""
        graph, fps = self.graph, self.graph.plan.fps
        assert spec.chunk is not None and fps is not None
        piece, seam = self._piece(spec.chunk)
        outs = [
            (graph.video(name), self.scratch.out / f"{encode_task_id(spec.chunk, name)}.mp4")
            for name in spec.renditions or (spec.rendition,)
        ]
        if len(outs) == 1:
            video, out = outs[0]
            steps.encode_chunk(piece, out, video, seam, fps, self.run, graph.source_start)
        else:
            steps.encode_chunk_renditions(piece, outs, seam, fps, self.run, graph.source_start)
        return [self.store(out, f"out/{out.name}") for _, out in outs]

    def _audio(self, spec: TaskSpec) -> list[str]:
        """The whole job's audio, or one piece of it cut on AAC frames (chalicelib.graph.audio)."""
        g = self.graph
        out, name = audio.encode(spec, g.plan, g.recipe, self.scratch, self.run, self.fetch,
                                 g.duration)  # fmt: skip
        return [self.store(out, name)]

    def _thumbnails(self, spec: TaskSpec) -> list[str]:
        """A chunk's pictures (and the poster if it falls there), from its own piece."""
        graph = self.graph
        ladder = graph.recipe.ladder
        assert ladder is not None and ladder.thumbnails is not None and graph.plan.fps
        t = ladder.thumbnails
        # A plan stored before thumbnails were per chunk has one task for every chunk.
        indexes = [c.index for c in graph.plan.chunks] if spec.chunk is None else [spec.chunk]
        files: list[Path] = []
        for index in indexes:
            piece, seam = self._piece(index)
            files += steps.chunk_thumbnails(
                piece, self.scratch.out, seam, graph.plan.fps, t.every_seconds, t.width,
                graph.duration, graph.poster_height, self.run, graph.source_start,
            )  # fmt: skip
        return [self.store(f, f"thumbs/{f.name}") for f in files]

    def _quality(self, spec: TaskSpec) -> list[str]:
        """One chunk of one rendition against its piece of the source, trimmed alike.

        A measurement that fails is a result too (`failed`, with why): the encode stands
        and the job completes. Only a killed ffmpeg is tried again, as any task's is.
        """
        graph, fps = self.graph, self.graph.plan.fps
        assert spec.chunk is not None and spec.rendition is not None and fps is not None
        piece, seam = self._piece(spec.chunk)
        name = f"out/{encode_task_id(spec.chunk, spec.rendition)}.mp4"
        encoded = self.fetch(name, self.scratch.path / "rendition.mp4")
        try:
            if graph.source_size is None:
                raise quality.QualityFailed("the source's size is unknown")
            series = quality.measure(
                encoded, piece, graph.source_size, self.scratch.path / "measure", self.run,
                metrics=graph.metrics(), threads=_threads(graph.video(spec.rendition).args),
                trim=(seam.start, seam.end, fps, graph.source_start),
                duration=(seam.end - seam.start) if seam.end is not None else None,
            )  # fmt: skip
            result = quality.chunk_result(series)
        except FfmpegKilled:
            raise
        except (MediaFailed, quality.QualityFailed) as exc:
            result = quality.failed(f"chunk {spec.chunk}: {exc}")
        return self._measured(spec, result)

    def measure_failed(self, spec: TaskSpec, reason: str) -> list[str]:
        """A measurement that could not be made at all (its tries spent): that is its result."""
        return self._measured(spec, quality.failed(f"chunk {spec.chunk}: {reason}"))

    def _measured(self, spec: TaskSpec, result: dict[str, Any]) -> list[str]:
        out = self.scratch.out / f"{spec.id}.json"
        out.write_text(json.dumps(result, separators=(",", ":")))
        return [self.store(out, f"measures/{spec.id}.json")]

    def gather_quality(self, publish: Path) -> None:
        """Each rendition's chunks in timeline order → its summary and its series file."""
        for video in self.graph.recipe.videos:
            chunks = []
            for chunk in self.graph.plan.chunks:
                task = measures.task_id(chunk.index, video.name)
                path = self.fetch(f"measures/{task}.json", self.scratch.path / f"{task}.json")
                chunks.append(json.loads(path.read_text()))
            summary, document = quality.aggregate(video.name, chunks)
            self.qualities[video.name] = quality.write_series(
                publish, video.name, summary, document
            )

    def assemble(self, publish: Path) -> None:
        """Every output of the job into `publish`: joined, with audio, packaged."""
        graph, scratch = self.graph, self.scratch
        audio = None
        if any(t.kind is Kind.AUDIO for t in graph.plan.tasks):
            audio = joined_audio(graph.plan, scratch, self.run, self.fetch)
        joined = []
        folder = scratch.path / "joined"
        folder.mkdir(exist_ok=True)
        parts = {
            video.name: [
                (f"out/{encode_task_id(c.index, video.name)}.mp4",
                 scratch.path / "parts" / video.name / f"{c.index:04d}.mp4")
                for c in graph.plan.chunks
            ]
            for video in graph.recipe.videos
        }  # fmt: skip
        # Every rendition's chunks at once: one at a time, a long ladder's thousands of
        # round trips would take most of the invocation.
        transfers.all_at_once([p for named in parts.values() for p in named],
                              lambda pair: self.fetch(*pair))  # fmt: skip
        for video in graph.recipe.videos:
            paths = [path for _, path in parts[video.name]]
            joined.append((video, steps.join(paths, folder / f"{len(joined)}.mp4", self.run)))
        if graph.metrics():
            self.gather_quality(publish)
        ladder = graph.recipe.ladder
        if ladder is None:
            _, path = joined[0]
            out = publish / graph.recipe.output
            steps.assemble_single(path, audio, out, graph.recipe.container, self.run)
            return
        assert graph.plan.fps is not None
        steps.assemble_ladder(joined, audio, graph.recipe, graph.plan.fps, publish, self.run)
        self.pictures(publish)

    def pictures(self, publish: Path) -> None:
        """The chunks' thumbnails into `publish`, and the sprite tiled from them."""
        graph = self.graph
        ladder = graph.recipe.ladder
        assert ladder is not None
        folder = publish / "thumbnails"
        pictures = [(name, folder / name.rsplit("/", 1)[-1]) for name in self.names("thumbs/")]
        transfers.all_at_once(pictures, lambda pair: self.fetch(*pair))
        if ladder.thumbnails is not None and ladder.thumbnails.sprite:
            steps.sprite(publish, ladder.thumbnails.every_seconds, graph.duration, self.run)


def _threads(args: tuple[str, ...]) -> int:
    """The rendition's encoder threads, for libvmaf too (the host is sized for them)."""
    for flag, value in itertools.pairwise(args):
        if flag == "-threads" and value.isdigit():
            return int(value)
    return 1
