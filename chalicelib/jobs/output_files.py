"""Every object of a job's outputs, one by one, each with a download link: what a client
needs to save a whole HLS/DASH package (segments, init segments, numbered thumbnails).

A job records a folder of segments or thumbnails as one output (a long ladder has
thousands); its objects are read from S3 with a paged list under that folder, which
is always inside the job's dest — no table is queried or scanned. An output of one
object is headed at the version the job recorded, so its size, ETag and link are the
job's own bytes. A folder's objects are the current ones (their versions are not
recorded, see `outputs.record_versions`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.errors import Gone, InvalidInput, NotFound
from chalicelib.store import storage
from chalicelib.store.models import Job, rfc3339

MAX_PAGE = 1000  # what one S3 list returns


def name_of(key: str, dest_key: str) -> str:
    """An output's name: its key under the job's dest (`360p/`, `master.m3u8`)."""
    return key[len(dest_key) :] if dest_key and key.startswith(dest_key) else key


def kind_of(record: dict[str, Any]) -> str:
    """What an output is; outputs recorded before kinds were (single-file presets) get one."""
    if record.get("kind"):
        return str(record["kind"])
    return "video" if record.get("width") else "audio" if record.get("codec") else "file"


def _cursor(index: int, token: str | None) -> str:
    raw = json.dumps({"o": index, "t": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str | None) -> tuple[int, str | None]:
    if not cursor:
        return 0, None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        index, token = int(raw["o"]), raw["t"]
        if index < 0 or not (token is None or isinstance(token, str)):
            raise ValueError
    except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
        raise InvalidInput("cursor is not one this route returned: start without it") from None
    return index, token


def _wanted(job: Job, dest_key: str, output: str | None) -> list[dict[str, Any]]:
    records = [dict(o) for o in job.outputs or []]
    if output is None:
        return records
    picked = [
        r for r in records if output in (r["key"], name_of(r["key"], dest_key).rstrip("/"),
                                         name_of(r["key"], dest_key))
    ]  # fmt: skip
    if not picked:
        raise NotFound(
            f"job {int(job.id)} has no output named {output!r}: "
            f"GET /api/jobs/{int(job.id)}/outputs lists them"
        )
    return picked


def list_files(
    job: Job, *, output: str | None = None, cursor: str | None = None, count: int = MAX_PAGE
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the objects of the job's outputs (or of one output), and the next cursor."""
    count = max(1, min(count, MAX_PAGE))
    dest = storage.from_uri(job.dest)
    records = _wanted(job, dest.key, output)
    # Folders hold their outputs of one object too (360p/index.m3u8, thumbnails/sprite.jpg):
    # those are listed once, as their own record.
    singles = {r["key"] for r in job.outputs or [] if r.get("uri")}
    index, token = _parse_cursor(cursor)
    items: list[dict[str, Any]] = []
    while index < len(records) and len(items) < count:
        record = records[index]
        name = name_of(record["key"], dest.key)
        if record.get("uri"):
            location = storage.from_uri(record["uri"])
            version = record.get("version_id")
            facts = storage.head(location, version)
            if facts is None:
                raise Gone(
                    f"job {int(job.id)}: the version it wrote of {record['key']} was removed "
                    "(by the bucket's lifecycle rule or a person); restart the job to make it again"
                )
            items.append(_view(name, location, facts, version, dest.key))
            index, token = index + 1, None
            continue
        prefix = record["key"]
        if not prefix.endswith("/") or not prefix.startswith(dest.key):
            index, token = index + 1, None  # never list outside the job's dest
            continue
        found, token = storage.list_page(dest.bucket, prefix, token=token, count=count - len(items))
        for facts in found:
            if facts["key"] not in singles:
                location = storage.S3Location(dest.bucket, facts["key"])
                items.append(_view(name, location, facts, None, dest.key))
        if token is None:
            index += 1
    return items, (_cursor(index, token) if index < len(records) else None)


def _view(output: str, location: storage.S3Location, facts: dict[str, Any],
          version: str | None, dest_key: str) -> dict[str, Any]:  # fmt: skip
    url, expires = storage.download_link(location, version)
    view = {
        "output": output,
        "name": name_of(location.key, dest_key),
        "key": location.key,
        "size": facts["size"],
        "etag": facts["etag"],
        "url": url,
        "url_expires": rfc3339(expires),
    }
    if version:
        view["version_id"] = version
    return view
