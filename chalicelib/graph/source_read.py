"""How a job's tasks read its source: by range (no whole download before the fan-out), or
one download cut into pieces. The plan records which way, and why (`source_read`).

- **ranged**: the job's run probes the source through the loopback proxy
  (chalicelib/store/source_proxy.py), reading its header and index only, plans, and sends
  every task at once. Each chunk's task cuts its own piece by stream copy from the proxy:
  the same argv as the split, so the piece, its frames and its seams are the same; the
  encode that follows stays on the file protocol. The job's run then copies the audio out
  through the proxy and cuts its pieces, once every video task is sent.
- **download**: as before, the whole source is downloaded and split by the job's run. Taken
  for a source under OE_RANGED_MIN_BYTES (one download is cheaper than many small reads),
  a container with no index to seek by (MPEG-TS, raw streams, ...: reaching a chunk would
  mean reading all before it), or a plan of one task (it reads everything anyway).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from chalicelib.config import graph_settings, runtime
from chalicelib.graph import audio, build
from chalicelib.graph.build import Piece
from chalicelib.graph.plan import Kind, Plan
from chalicelib.media import argv, steps
from chalicelib.media.argv import Loopback
from chalicelib.media.probe import MediaError, probe_loopback
from chalicelib.media.scratch import Scratch
from chalicelib.store import storage
from chalicelib.store.source_proxy import SourceProxy


class Way(StrEnum):
    RANGED = "ranged"
    DOWNLOAD = "download"


# Demuxers (the first name ffmpeg gives its input) that seek from the file's own index:
# MP4/MOV sample tables, Matroska/WebM cues. A chunk then reads only its own bytes.
INDEXED = frozenset({"mov", "matroska"})


@dataclass(frozen=True)
class Located:
    """The source object as the plan saw it: a ranged read insists on this ETag."""

    location: storage.S3Location
    size: int
    etag: str | None


def worth_ranged(size: int) -> bool:
    """Big enough that reading it by range (and probing it that way first) can pay."""
    return size >= graph_settings().ranged_min_bytes


def choose(source: Located, container: str, graph: bool) -> dict[str, Any]:
    """The plan's `source_read`: the way, why, and what a ranged read checks against."""
    name = container.split(",")[0]
    facts: dict[str, Any] = {"bytes": source.size, "container": name}
    if not graph:
        return {"way": Way.DOWNLOAD.value, "why": "one task reads the whole source", **facts}
    if not worth_ranged(source.size):
        floor = graph_settings().ranged_min_bytes
        why = f"{source.size} bytes, under OE_RANGED_MIN_BYTES ({floor}): one download is cheaper"
        return {"way": Way.DOWNLOAD.value, "why": why, **facts}
    if name not in INDEXED:
        why = f"{name} has no index to seek by: downloaded once, copied into Matroska, split"
        return {"way": Way.DOWNLOAD.value, "why": why, **facts}
    why = f"{name} is indexed: each chunk's task reads its own range"
    return {"way": Way.RANGED.value, "why": why, "etag": source.etag, **facts}


def record(plan: Plan, source: Located, container: str, seconds: float) -> Way:
    """The choice onto the plan, with the seconds from the run's start to the plan made
    (ranged: the first tasks are sent right after; download: after the download and the
    first pieces)."""
    read = choose(source, container, plan.graph)
    plan.details["source_read"] = {**read, "ready_seconds": round(seconds, 3)}
    return Way(read["way"])


def way(plan: Plan) -> Way:
    """A plan stored before ranged reads has none recorded: it was downloaded."""
    return Way(dict(plan.details.get("source_read") or {}).get("way", Way.DOWNLOAD.value))


def pieces(plan: Plan, source: Path | Located, folder: Path, run: steps.Run) -> Iterator[Piece]:
    """What the fan-out stores and sends, in the order it is ready.

    Downloaded (`source` a local file): the split's pieces, as build.pieces cuts them. Read
    by range (`source` the object): each chunk's tasks with no piece (`name` empty: they cut
    their own), all at once; then the audio's pieces, copied out through the proxy. The
    audio is interleaved with the video, so that copy reads the whole source by range, but
    only once every video task is sent, and with nothing of the source kept in scratch.
    """
    if isinstance(source, Path):
        read = dict(plan.details.get("source_read") or {})
        if read.get("container", "mov") not in INDEXED:  # (a plan from before: an MP4 then)
            folder.mkdir(parents=True, exist_ok=True)
            copy = folder / "indexed.mkv"
            run(argv.indexed_copy(source, copy), folder, None)
            source.unlink()  # scratch holds one copy of the source at a time
            source = copy
        yield from build.pieces(source, plan, folder, run)
        return
    for chunk in plan.chunks:
        yield Piece(Path(), "", tuple(t for t in plan.work_tasks if t.chunk == chunk.index))
    sound = tuple(t for t in plan.work_tasks if t.kind is Kind.AUDIO)
    with served(source) as url:
        # audio.pieces reads its source through argv.source_input, a Loopback's too.
        made = audio.pieces(url, sound, plan, folder, run)  # type: ignore[arg-type]
        yield from (Piece(*piece) for piece in made)


def download_path(source: Located, scratch: Scratch) -> Path:
    """Where the whole source goes in scratch, once there is room for it and the outputs."""
    room = scratch.free_bytes(runtime().scratch_bytes)
    if source.size * 2 > room:
        raise steps.MediaFailed(
            f"source is {source.size} bytes but scratch space holds {room} bytes "
            "(source plus outputs); use a smaller source or a host with more storage"
        )
    suffix = Path(source.location.key).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
        suffix = ""  # the name is ours; ffmpeg probes the content, not the name
    return scratch.path / f"source{suffix}"


def planned(source_uri: str, plan: Plan) -> Located:
    read = dict(plan.details.get("source_read") or {})
    return Located(storage.from_uri(source_uri), int(read["bytes"]), read.get("etag"))


class SourceChanged(steps.MediaFailed):
    """The object under the source's key is not the one planned with (overwritten)."""


@contextlib.contextmanager
def served(source: Located) -> Iterator[Loopback]:
    """The source on loopback while the block runs; ffmpeg's failures are explained by
    the proxy's own (a storage error is raised as itself: transient ones are retried)."""

    def read(first: int, last: int) -> bytes:
        return storage.read_range(source.location, first, last, source.etag)

    with SourceProxy(source.size, read) as proxy:
        try:
            yield Loopback(proxy.url)
            if proxy.failure is not None:  # ffmpeg may take a cut-short read for the end
                raise proxy.failure
        except steps.FfmpegKilled:
            raise  # not the media's fault nor the store's: tried again as any kill is
        except (steps.MediaFailed, MediaError) as exc:
            failure = proxy.failure
            code = getattr(failure, "response", {}).get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                raise SourceChanged(
                    f"source {source.location.uri} changed after the job planned it "
                    "(its ETag no longer matches); restart the job to encode the new file"
                ) from None
            if failure is not None:
                raise failure from None
            tail = proxy.redact(getattr(exc, "log_tail", ""))
            if isinstance(exc, MediaError):
                raise MediaError(proxy.redact(str(exc))) from None
            raise steps.MediaFailed(proxy.redact(str(exc)), tail) from None


def probe(source: Located, cwd: Path) -> Any:
    with served(source) as url:
        return probe_loopback(url, cwd)


def cut_piece(
    url: Loopback, seam: steps.Seam, folder: Path, run: steps.Run, source_start: float
) -> Path:
    """One chunk's piece, as the split makes it, read by range."""
    (piece,) = steps.split(url, [seam], folder, run, source_start)
    return piece


# --- for benches: what a chunk waits for before its encode starts -----------------------


def time_to_first_chunk(source: Path, folder: Path, chunk_seconds: float = 20.0) -> dict:
    """Seconds to probe a local file through the proxy (as the job's run does) and to cut
    its first chunk's piece (as that chunk's task does before encoding), and bytes read.

    The proxy reads the file here instead of S3; add the store's latency per request
    (`requests`) to project it. The job's plan records its own `ready_seconds` too.
    """
    size = source.stat().st_size

    def read(first: int, last: int) -> bytes:
        with source.open("rb") as handle:
            handle.seek(first)
            return handle.read(last - first + 1)

    folder.mkdir(parents=True, exist_ok=True)
    with SourceProxy(size, read) as proxy:
        began = time.monotonic()
        info = probe_loopback(Loopback(proxy.url), folder)
        probed, probe_bytes = time.monotonic(), proxy.bytes_read
        cut_piece(Loopback(proxy.url), steps.Seam(0, 0.0, chunk_seconds), folder,
                  steps.local_run, info.start)  # fmt: skip
        cut = time.monotonic()
    return {
        "probe_seconds": round(probed - began, 3),
        "first_piece_seconds": round(cut - probed, 3),
        "time_to_first_chunk_seconds": round(cut - began, 3),
        "probe_bytes": probe_bytes,
        "bytes_read": proxy.bytes_read,
        "requests": proxy.requests,
        "source_bytes": size,
    }
