"""A job attempt's intermediates in S3: `_openencoder/work/<job>/<attempt>/...` in the input bucket.

Pieces of the source, each task's encode, the job's audio and thumbnails live here
between tasks. Nothing here is ever an output (uploads to a dest refuse the internal
prefix); the whole attempt's folder is removed when the job ends, and a lifecycle rule
(ops/provision.py) expires anything a dead host left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import settings
from chalicelib.store import storage

WORK_PREFIX = "_openencoder/work/"


class Stopped(storage.Stopped):
    """A transfer stopped because the task must stop (a `storage.Stopped`, as hosts catch)."""


@dataclass(frozen=True)
class Workspace:
    job_id: int
    attempt: int

    @property
    def bucket(self) -> str:
        return settings().input_bucket

    @property
    def prefix(self) -> str:
        return f"{WORK_PREFIX}{self.job_id}/{self.attempt}/"

    def key(self, name: str) -> str:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"not a workspace name: {name!r}")
        return self.prefix + name

    def put(self, path: Path, name: str, should_stop: Callable[[], bool] = bool) -> str:
        def progress(_sent: int) -> None:
            if should_stop():  # s3transfer aborts the transfer on an exception here
                raise Stopped(f"upload of {name} interrupted")

        key = self.key(name)
        storage.stoppable(
            lambda: storage.s3().upload_file(str(path), self.bucket, key, Callback=progress),
            should_stop,
            f"upload of {name} interrupted",
        )
        return key

    def get(self, name: str, path: Path, should_stop: Callable[[], bool] = bool) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = storage.s3().get_object(Bucket=self.bucket, Key=self.key(name))["Body"]
        with path.open("wb") as handle:
            for chunk in body.iter_chunks(storage.CHUNK_BYTES):
                if should_stop():
                    body.close()
                    raise Stopped(f"download of {name} interrupted")
                handle.write(chunk)
        return path

    def names(self, under: str = "") -> list[str]:
        """Every object name under `under` (relative to the workspace)."""
        paginator = storage.s3().get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=self.key(under) if under else self.prefix
        ):
            found += [o["Key"][len(self.prefix) :] for o in page.get("Contents", [])]
        return found

    def remove(self) -> int:
        """Delete the attempt's whole folder; returns how many objects went."""
        names = self.names()
        client = storage.s3()
        for start in range(0, len(names), 1000):
            batch = [{"Key": self.key(n)} for n in names[start : start + 1000]]
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(names)
