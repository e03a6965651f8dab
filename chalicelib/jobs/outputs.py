"""A run's outputs: published under the job's dest, each stamped with the run that wrote
it, and removed again — exactly those objects — when the run does not complete.

Which job wins a key two jobs share: the one that uploads it last (its version is
current); a cancelled, failed or superseded run deletes only its own versions, so the
other job's object stays or reappears (the output bucket is versioned; see docs/concepts/jobs.md).
Each record keeps the version id the job wrote, so its download link serves the job's
own bytes whichever job is current.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.media.probe import MediaError, fill_video_bit_rate, probe
from chalicelib.store import faults, storage

log = logging.getLogger("openencoder.outputs")
T = TypeVar("T")
_NOT_MEDIA = (".m3u8", ".mpd", ".vtt", ".txt")


class NoOutputs(Exception):
    """ffmpeg wrote nothing to publish."""


class RefusedByStorage(Exception):
    """A permanent storage failure, with a message a person can act on."""


def describe(path: Path, location: storage.S3Location) -> dict[str, Any]:
    """What the job records about one output: key, size and, for media, its streams."""
    record: dict[str, Any] = {"key": location.key, "uri": location.uri, "size": path.stat().st_size}
    if path.suffix.lower() in _NOT_MEDIA:
        return record
    try:
        info = fill_video_bit_rate(path, probe(path))
    except MediaError:
        return record
    video = info.video
    stream = video or info.audio
    record.update(
        {
            "duration": info.duration,
            "container": info.container,
            "codec": stream.codec if stream else None,
            "profile": stream.profile if stream else None,
            "width": video.width if video else None,
            "height": video.height if video else None,
            "bit_rate": (stream.bit_rate if stream and stream.bit_rate else info.bit_rate),
        }
    )
    return {k: v for k, v in record.items() if v is not None}


def record_versions(
    records: list[dict[str, Any]],
    writer: storage.Writer,
    transfer: Callable[[str, Callable[[], Any]], Any],
) -> list[dict[str, Any]]:
    """Add to each record of one object the version id `writer` wrote (none if unversioned).

    A folder summary (a rendition's segments) has no `uri`: it names no single object, and
    heading its thousands of segments would double the requests of a ladder's upload.
    """
    for record in records:
        if not record.get("uri"):
            continue
        location = storage.from_uri(record["uri"])
        version = transfer(
            f"recording the version of {location.uri}",
            lambda loc=location: storage.written_version(loc, writer),
        )
        if version:
            record["version_id"] = version
    return records


class Outputs:
    """Publish one run's files under a dest; remove exactly what it wrote."""

    def __init__(self, writer: storage.Writer, *, retry_seconds: float,
                 extra: dict[str, Any]) -> None:  # fmt: skip
        self.writer = writer
        self.retry_seconds = retry_seconds  # how long a transient failure is retried
        self.extra = extra
        self.uploaded: list[storage.S3Location] = []

    def publish(
        self,
        folder: Path,
        dest_uri: str,
        *,
        transfer: Callable[[str, Callable[[], Any]], Any],
        should_stop: Callable[[], bool],
        check: Callable[[], None],
    ) -> list[dict[str, Any]]:
        """Upload every file of `folder`; every key is checked before the first byte."""
        dest = storage.from_uri(dest_uri)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            raise NoOutputs("ffmpeg wrote no output files")
        where = [
            storage.S3Location(dest.bucket, dest.key + p.relative_to(folder).as_posix())
            for p in files
        ]
        for location in where:
            storage.check_output(location)
        recorded = []
        for path, location in zip(files, where, strict=True):
            check()
            self.uploaded.append(location)
            try:
                transfer(
                    f"uploading {location.uri}",
                    lambda p=path, loc=location: storage.upload(p, loc, self.writer, should_stop),
                )
            except Exception as exc:
                if message := storage.explain(exc, location, "write outputs to"):
                    raise RefusedByStorage(message) from None
                raise
            recorded.append(describe(path, location))
        try:
            return record_versions(recorded, self.writer, transfer)
        except storage.NotWritten as exc:
            raise RefusedByStorage(str(exc)) from None

    def remove(self) -> None:
        """Delete exactly what this run wrote; another job's objects under the same keys stay."""
        for location in self.uploaded:
            try:
                faults.retry(
                    lambda loc=location: storage.remove_written_by(loc, self.writer),
                    until=time.monotonic() + self.retry_seconds,
                    what=f"removing {location.uri}",
                    extra=self.extra,
                )
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the outcome
                log.warning("could not remove %s: %s", location.uri, faults.describe(exc),
                            extra=self.extra)  # fmt: skip
        self.uploaded.clear()
