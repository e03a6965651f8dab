"""Where a job reads and writes: S3 locations of the stage's own buckets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import InvalidInput

_MAX_KEY_BYTES = 1024
# Objects the system keeps for itself (worker bundle, intermediates): never a job's output.
INTERNAL_PREFIX = "_openencoder/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_location(
    value: str,
    *,
    default_bucket: str,
    allowed_buckets: tuple[str, ...],
    what: str,
    is_prefix: bool = False,
) -> S3Location:
    """Parse `s3://bucket/key`, `s3:///key` or a bare `key`; refuse escapes and other buckets."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is empty")
    value = value.strip()
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        bucket = bucket or default_bucket
    elif "://" in value:
        raise InvalidInput(f"{what} must be s3://bucket/key, s3:///key or a key")
    else:
        bucket, key = default_bucket, value
    if bucket not in allowed_buckets:
        raise InvalidInput(
            f"{what} bucket {bucket!r} is not one this stage uses: {', '.join(allowed_buckets)}"
        )
    key = key.lstrip("/")
    if _CONTROL.search(key) or "\\" in key:
        raise InvalidInput(f"{what} key contains control characters or backslashes")
    if any(part in ("..", ".") for part in key.split("/")):
        raise InvalidInput(f"{what} key must not contain '.' or '..' path segments")
    if "//" in key:
        raise InvalidInput(f"{what} key must not contain empty path segments ('//')")
    if is_prefix:
        if key and not key.endswith("/"):
            key += "/"
    elif not key or key.endswith("/"):
        raise InvalidInput(f"{what} must name an object, not a folder")
    if len(key.encode()) > _MAX_KEY_BYTES:
        raise InvalidInput(f"{what} key is longer than {_MAX_KEY_BYTES} bytes")
    return S3Location(bucket, key)


# --- S3 transfers -------------------------------------------------------------

CHUNK_BYTES = 8 * 1024 * 1024
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".m4s": "video/iso.segment",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".ts": "video/mp2t",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".mp3": "audio/mpeg",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".vtt": "text/vtt",
}


# Large files go up in parts, several at once (s3transfer's multipart upload); 16 MiB parts
# keep S3's 10,000-part limit at 160 GB, past any output ffmpeg is allowed to write.
MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024
PART_CONCURRENCY = 4  # parts of one file in flight (files are also sent several at once)


@cache
def transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD_BYTES,
        multipart_chunksize=MULTIPART_THRESHOLD_BYTES,
        max_concurrency=PART_CONCURRENCY,
    )


class SourceMissing(Exception):
    """The source object does not exist (or may not be read)."""


class Stopped(Exception):
    """A transfer was interrupted because the job should stop."""


class OutsideBoundary(Exception):
    """An output would land where no job may write (the watch or internal prefix)."""


class NotWritten(Exception):
    """No version of a key names the writer that just uploaded it (someone removed it)."""


@dataclass(frozen=True)
class Writer:
    """The attempt that writes an object: stamped on it, compared before any delete."""

    job_id: int
    attempt: int
    run: str  # the lease owner: one run of the attempt on one host

    def metadata(self) -> dict[str, str]:
        return {
            "openencoder-job": str(self.job_id),
            "openencoder-attempt": str(self.attempt),
            "openencoder-run": self.run,
        }

    def wrote(self, metadata: dict[str, str]) -> bool:
        return all(metadata.get(k) == v for k, v in self.metadata().items())


@cache
def s3() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60
    )
    return boto3.client("s3", region_name=settings().region, config=config)


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def object_size(location: S3Location) -> int:
    return source_facts(location)["size"]


def source_facts(location: S3Location) -> dict[str, Any]:
    """A source's size and ETag (SourceMissing when it is not there or not ours to read)."""
    from botocore.exceptions import ClientError

    try:
        answer = s3().head_object(Bucket=location.bucket, Key=location.key)
        return {"size": int(answer["ContentLength"]), "etag": answer.get("ETag", "").strip('"')}
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "403", "AccessDenied"):
            raise SourceMissing(f"source {location.uri} does not exist or cannot be read") from None
        raise


def download(location: S3Location, path: Path, should_stop: Callable[[], bool]) -> int:
    """Stream an object to `path`, checking `should_stop` between chunks."""
    body = s3().get_object(Bucket=location.bucket, Key=location.key)["Body"]
    written = 0
    with path.open("wb") as handle:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            if should_stop():
                body.close()
                raise Stopped("download interrupted")
            handle.write(chunk)
            written += len(chunk)
    return written


def read_range(location: S3Location, first: int, last: int, etag: str | None) -> bytes:
    """Bytes first..last (inclusive) of an object, only while it is still the one planned
    with (`If-Match` on its ETag: S3 answers 412 once it was overwritten)."""
    match = {"IfMatch": f'"{etag}"'} if etag else {}
    answer = s3().get_object(
        Bucket=location.bucket, Key=location.key, Range=f"bytes={first}-{last}", **match
    )
    return answer["Body"].read()


def check_output(location: S3Location) -> None:
    """Refuse a key under the watch prefix (it would start jobs) or the internal prefix."""
    s = settings()
    if location.key.startswith(INTERNAL_PREFIX):
        raise OutsideBoundary(f"output {location.key!r} is under the internal {INTERNAL_PREFIX!r}")
    under_watch = s.watch_prefix and location.key.startswith(s.watch_prefix)
    if location.bucket == s.input_bucket and under_watch:
        raise OutsideBoundary(
            f"output {location.key!r} is under the watch prefix {s.watch_prefix!r}"
        )


def upload(
    path: Path, location: S3Location, writer: Writer, should_stop: Callable[[], bool]
) -> None:
    """Upload one output, stamped with the attempt that wrote it; checked per file."""
    check_output(location)

    def progress(_sent: int) -> None:
        # s3transfer lets an exception from the callback abort the transfer.
        if should_stop():
            raise Stopped("upload interrupted")

    extra = {"ContentType": content_type(path.name), "Metadata": writer.metadata()}
    stoppable(
        lambda: s3().upload_file(
            str(path),
            location.bucket,
            location.key,
            ExtraArgs=extra,
            Callback=progress,
            Config=transfer_config(),
        ),
        should_stop,
        "upload interrupted",
    )


def stoppable(transfer: Callable[[], Any], should_stop: Callable[[], bool], why: str) -> None:
    """Run `transfer`; if it failed because it was asked to stop, raise `Stopped`.

    s3transfer and botocore wrap the callback's `Stopped` (botocore as an HTTPClientError,
    which reads as a network fault): retried as one, a stopped transfer would start again
    and be stopped again until its retries ran out, long after the host's stop.
    """
    try:
        transfer()
        return
    except Exception as exc:
        if not (isinstance(exc, Stopped) or should_stop()):
            raise
    # A new one, raised after the handler: s3transfer re-raises the callback's own
    # `Stopped` with botocore's HTTPClientError as its context, and `faults.classify`
    # follows the context (it would call the stop a network fault again).
    raise Stopped(why)


def written_version(location: S3Location, writer: Writer) -> str | None:
    """The version id of the object `writer` uploaded at `location`; None if unversioned.

    `upload_file` (s3transfer) drops the PutObject / CompleteMultipartUpload response that
    carries the VersionId, and replacing it with our own put and multipart code would lose
    its parallel parts and part retries. So S3 is asked after the upload, and the answer is
    trusted only if the version's metadata names this writer: the current version is ours
    unless another job uploaded the same key since, and then the key's versions (newest
    first) are walked to the newest one this writer stamped. A retried upload that landed
    twice wrote the same bytes both times, so the newest of those is as good as any.
    """
    head = s3().head_object(Bucket=location.bucket, Key=location.key)
    current = head.get("VersionId")
    if current in (None, "null"):
        return None  # unversioned (or suspended): there is one object, as before
    if writer.wrote(head.get("Metadata", {})):
        return str(current)
    for version_id in _versions(location):
        if version_id == current:
            continue
        older = s3().head_object(Bucket=location.bucket, Key=location.key, VersionId=version_id)
        if writer.wrote(older.get("Metadata", {})):
            return str(version_id)
    raise NotWritten(
        f"{location.uri} was removed right after this job uploaded it, so its download "
        "link could not be pinned to the job's own bytes; restart the job"
    )


def version_exists(location: S3Location, version_id: str) -> bool:
    """Whether one version of a key is still stored (a lifecycle rule may have expired it)."""
    from botocore.exceptions import ClientError

    try:
        s3().head_object(Bucket=location.bucket, Key=location.key, VersionId=version_id)
    except ClientError as exc:
        # A HEAD has no error body: S3 answers a bare 404 for a removed version.
        if exc.response["Error"]["Code"] in ("404", "NoSuchVersion", "NoSuchKey"):
            return False
        raise
    return True


def head(location: S3Location, version_id: str | None = None) -> dict[str, Any] | None:
    """Size and ETag of one object (of one version of it); None if it is not stored."""
    from botocore.exceptions import ClientError

    which = {"VersionId": version_id} if version_id and version_id != "null" else {}
    try:
        answer = s3().head_object(Bucket=location.bucket, Key=location.key, **which)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchVersion", "NoSuchKey"):
            return None
        raise
    return {"size": int(answer["ContentLength"]), "etag": answer.get("ETag", "").strip('"')}


def list_page(
    bucket: str, prefix: str, *, token: str | None, count: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the current objects under a prefix (key, size, etag) and the next token."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": count}
    if token:
        params["ContinuationToken"] = token
    answer = s3().list_objects_v2(**params)
    found = [
        {"key": o["Key"], "size": int(o["Size"]), "etag": o.get("ETag", "").strip('"')}
        for o in answer.get("Contents", [])
    ]
    return found, answer.get("NextContinuationToken") if answer.get("IsTruncated") else None


def delete(locations: list[S3Location]) -> None:
    """Delete objects by key (uploads the API owns; a job's outputs use `remove_written_by`)."""
    for location in locations:
        s3().delete_object(Bucket=location.bucket, Key=location.key)


def remove_written_by(location: S3Location, writer: Writer) -> int:
    """Delete the versions of one key that `writer` wrote, and nothing else.

    With a versioned bucket this is exact: each version is headed, compared and deleted
    by id, so another job's object under the same key stays (or reappears as current).
    Without versioning the one "null" version is headed and compared first.
    """
    removed = 0
    for version_id in _versions(location):
        which = {} if version_id in (None, "null") else {"VersionId": version_id}
        head = s3().head_object(Bucket=location.bucket, Key=location.key, **which)
        if writer.wrote(head.get("Metadata", {})):
            s3().delete_object(Bucket=location.bucket, Key=location.key, **which)
            removed += 1
    return removed


def _versions(location: S3Location) -> Iterator[str | None]:
    """The version ids of exactly one key, newest first (a prefix list also finds longer keys)."""
    pages = (
        s3()
        .get_paginator("list_object_versions")
        .paginate(Bucket=location.bucket, Prefix=location.key)
    )
    for page in pages:
        for version in page.get("Versions", []):
            if version["Key"] == location.key:
                yield version["VersionId"]


def explain(exc: BaseException, location: S3Location, verb: str) -> str | None:
    """A message a person can act on for a permanent S3 failure, or None if it is not one."""
    from chalicelib.store import faults

    code = faults.error_code(exc)
    if code == "NoSuchBucket":
        return (
            f"cannot {verb} s3://{location.bucket}/: the bucket does not exist; "
            "create it (provisioning makes the stage's buckets) or use another of its buckets"
        )
    if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "AccountProblem"):
        return (
            f"cannot {verb} {location.uri}: access denied ({code}); "
            "check the bucket policy and the function's role"
        )
    if code in ("InvalidBucketName", "InvalidObjectState", "KeyTooLongError"):
        return f"cannot {verb} {location.uri}: {code}"
    return None


def from_uri(uri: str) -> S3Location:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return S3Location(bucket, key)


# --- presigned URLs -------------------------------------------------------------


@cache
def presigner() -> Any:
    """An S3 client for presigning; SigV4 so URLs work in every region and carry an expiry.

    Presigning is local computation (no call to S3). The URL points at the same
    endpoint the stage uses, so the local stack's URLs reach its own AWS endpoint.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", region_name=settings().region, config=Config(signature_version="s3v4")
    )


def presign(operation: str, params: dict[str, Any], seconds: int) -> str:
    return presigner().generate_presigned_url(operation, Params=params, ExpiresIn=seconds)


def download_link(location: S3Location, version_id: str | None = None) -> tuple[str, datetime]:
    """A presigned GET for an output and the moment it stops working.

    With the version a job recorded, the link serves that job's bytes even after another
    job overwrote the key; without one (an unversioned bucket) it serves the current object.
    """
    seconds = settings().download_url_seconds
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    params = {"Bucket": location.bucket, "Key": location.key}
    if version_id and version_id != "null":
        params["VersionId"] = version_id
    url = presign("get_object", params, seconds)
    return url, expires
