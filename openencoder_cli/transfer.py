"""Moving bytes up: uploads through the uploads API, with progress (downloads: download.py).

Bytes go straight to storage through the presigned URLs the API hands out; the API
itself only sees the small JSON calls around them.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

import requests
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from openencoder_cli import output
from openencoder_cli.client import Api, CliError

PARALLEL_PARTS = 4
TRANSFER_TIMEOUT = (10, 300)


class TransferFailed(CliError):
    """Storage refused or dropped a transfer (exit 1: the API was reached)."""

    exit_code = 1


def byte_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=output.err,
    )


class _Slice:
    """`length` bytes of a file from `offset`, read in blocks, reporting each block.

    Has `__len__` so requests sends a Content-Length (S3 wants one for presigned
    PUTs), and no `tell`, so requests does not measure the whole file instead.
    """

    def __init__(self, handle: BinaryIO, offset: int, length: int, seen: Callable[[int], None]):
        handle.seek(offset)
        self.handle, self.left, self.seen = handle, length, seen

    def __len__(self) -> int:
        return self.left

    def read(self, size: int = -1) -> bytes:
        want = self.left if size is None or size < 0 else min(size, self.left)
        block = self.handle.read(want)
        self.left -= len(block)
        self.seen(len(block))
        return block


def _put(url: str, path: Path, offset: int, length: int, headers: dict[str, str],
         seen: Callable[[int], None]) -> requests.Response:  # fmt: skip
    with path.open("rb") as handle:
        try:
            response = requests.put(url, data=_Slice(handle, offset, length, seen),
                                    headers=headers, timeout=TRANSFER_TIMEOUT)  # fmt: skip
        except requests.RequestException as exc:
            raise TransferFailed(f"uploading {path.name} failed: {exc}") from None
    if response.status_code >= 300:
        detail = " ".join(response.text.split())[:200]
        raise TransferFailed(f"storage refused {path.name} (HTTP {response.status_code}): {detail}")
    return response


def upload(api: Api, path: Path, bars: Progress) -> dict[str, Any]:
    """Upload one file (one PUT, or parts in parallel); the completed upload's view."""
    size = path.stat().st_size
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    created = api.post(
        "/uploads", {"filename": path.name, "size": size, "content_type": content_type}
    )["upload"]
    task = bars.add_task(f"upload {path.name}", total=size)

    def seen(count: int) -> None:
        bars.advance(task, count)

    try:
        if created.get("method") == "multipart":
            etags = _put_parts(created, path, size, seen)
            body: dict[str, Any] = {"parts": etags}
        else:
            headers = dict(created.get("headers") or {"Content-Type": content_type})
            _put(created["url"], path, 0, size, headers, seen)
            body = {}
        return api.post(f"/uploads/{created['id']}/complete", body)["upload"]
    except BaseException:
        # Leave nothing half-uploaded behind (Ctrl-C included); the abort is best effort.
        with suppress(CliError):
            api.delete(f"/uploads/{created['id']}")
        raise


def _put_parts(created: dict[str, Any], path: Path, size: int,
               seen: Callable[[int], None]) -> list[dict[str, Any]]:  # fmt: skip
    part_size = int(created["part_size"])

    def send(part: dict[str, Any]) -> dict[str, Any]:
        number = int(part["part_number"])
        offset = (number - 1) * part_size
        response = _put(part["url"], path, offset, min(part_size, size - offset), {}, seen)
        etag = response.headers.get("ETag")
        if not etag:
            raise TransferFailed(f"storage gave no ETag for part {number} of {path.name}")
        return {"part_number": number, "etag": etag}

    pool = ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="part")
    try:
        return list(pool.map(send, created["parts"]))
    finally:
        # On a failure or Ctrl-C, parts not yet started are dropped rather than sent, and
        # the caller aborts the upload without waiting for the ones in flight.
        pool.shutdown(wait=False, cancel_futures=True)
