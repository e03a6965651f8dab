"""Many files to or from S3 at once: a bounded number in flight, and the files that name
others (media playlists, the master playlist, the MPD, a sprite's index) sent only once
everything they name is stored, so a reader never finds a playlist that points at a
segment not there yet.

A ladder's assemble publishes thousands of small segments: one at a time, each PUT's
round trip adds up to minutes; a few dozen at once, S3 takes them in seconds (it serves
thousands of PUTs a second per prefix). Large files also go up in parts
(`storage.transfer_config`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from chalicelib.store import storage
from chalicelib.store.storage import S3Location, Writer

T = TypeVar("T")
FILES_IN_FLIGHT = 16  # files sent at once; each large one also sends its parts at once


def tier(relative: str) -> int:
    """0: media and pictures; 1: what names them (a rendition's playlist, the sprite's
    index); 2: what names those (the master playlist) and the MPD, which names segments
    of every rendition and is read as the package's entry point."""
    name = relative.rsplit("/", 1)[-1]
    if name.endswith(".mpd") or (name.endswith(".m3u8") and "/" not in relative):
        return 2
    if name.endswith((".m3u8", ".vtt")):
        return 1
    return 0


def in_tiers(items: Iterable[tuple[str, T]]) -> list[list[T]]:
    """Items (each by its name under the dest) in the order they may be published."""
    tiers: list[list[T]] = [[], [], []]
    for relative, item in items:
        tiers[tier(relative)].append(item)
    return [t for t in tiers if t]


def all_at_once(
    items: Sequence[T], send: Callable[[T], object], *, at_once: int = FILES_IN_FLIGHT
) -> None:
    """`send` every item, `at_once` in flight; the first failure stops the rest from
    starting and is raised once those already in flight have ended."""
    if not items:
        return
    if len(items) == 1 or at_once <= 1:
        for item in items:
            send(item)
        return
    with ThreadPoolExecutor(max_workers=min(at_once, len(items))) as pool:
        futures = [pool.submit(send, item) for item in items]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]


def publish(items: Iterable[tuple[str, T]], send: Callable[[T], object]) -> None:
    """Every item (by its name under the dest) sent, tier by tier (see `tier`), each
    tier's several at once."""
    for group in in_tiers(items):
        all_at_once(group, send)


def copy(
    source: S3Location, location: S3Location, writer: Writer, should_stop: Callable[[], bool]
) -> None:
    """An object copied inside S3 (no byte through this host), stamped as `upload` stamps;
    large ones in parts (UploadPartCopy), as s3transfer does."""
    storage.check_output(location)

    def progress(_sent: int) -> None:
        if should_stop():
            raise storage.Stopped("copy interrupted")

    extra = {"ContentType": storage.content_type(location.key), "Metadata": writer.metadata(),
             "MetadataDirective": "REPLACE"}  # fmt: skip
    origin = {"Bucket": source.bucket, "Key": source.key}
    storage.stoppable(
        lambda: storage.s3().copy(origin, location.bucket, location.key, ExtraArgs=extra,
                                  Callback=progress, Config=storage.transfer_config()),
        should_stop,
        "copy interrupted",
    )  # fmt: skip
