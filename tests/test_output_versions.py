"""Download links serve the bytes their own job wrote: each output records the version its
job uploaded."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from chalicelib import storage
from chalicelib.config import settings
from chalicelib.outputs import record_versions

FIRST = storage.Writer(job_id=1, attempt=1, run="run-a")
SECOND = storage.Writer(job_id=2, attempt=1, run="run-b")


def now(what: str, call):
    """A `transfer` that calls at once (the runners' retry within the lease is not tested here)."""
    return call()


def put(tmp_path: Path, location: storage.S3Location, writer: storage.Writer, data: bytes):
    path = tmp_path / f"{writer.run}.bin"
    path.write_bytes(data)
    storage.upload(path, location, writer, should_stop=lambda: False)


# --- recording the version ------------------------------------------------------------


def test_each_writer_finds_its_own_version_after_another_job_overwrote_the_key(aws, tmp_path):
    shared = storage.S3Location(settings().output_bucket, "shared/out.mp4")
    put(tmp_path, shared, FIRST, b"first job's bytes")
    put(tmp_path, shared, SECOND, b"second job's bytes")
    first, second = (storage.written_version(shared, w) for w in (FIRST, SECOND))
    s3 = boto3.client("s3")
    assert second == s3.head_object(Bucket=shared.bucket, Key=shared.key)["VersionId"] != first
    old = s3.get_object(Bucket=shared.bucket, Key=shared.key, VersionId=first)
    assert old["Body"].read() == b"first job's bytes"
    with pytest.raises(storage.NotWritten):  # never another job's version
        storage.written_version(shared, storage.Writer(job_id=3, attempt=1, run="run-c"))


def test_a_segment_folder_summary_records_no_version_and_asks_s3_nothing():
    summary = {"key": "out/360p/", "kind": "segments", "rendition": "360p", "count": 3, "size": 9}
    asked: list[str] = []
    records = record_versions([dict(summary)], FIRST, lambda what, call: asked.append(what))
    assert records == [summary] and asked == []
