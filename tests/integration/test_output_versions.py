"""Download links serve the bytes their own job wrote: each output records the version its
job uploaded, links are presigned for that version, a removed version is a 410 with a
reason, and an unversioned bucket records nothing and links the current object as before.

Two jobs writing one dest run for real (ffmpeg, moto) on both paths: the single-job
pipeline and the graph's assemble.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from chalicelib.config import settings
from chalicelib.graph.encode_queue import run_message
from chalicelib.jobs import records as jobs
from chalicelib.jobs.outputs import record_versions
from chalicelib.store import storage
from chalicelib.store.models import Job
from tests import media as make
from tests.conftest import ADMIN
from tests.integration.test_graph import Drain, ended

FIRST = storage.Writer(job_id=1, attempt=1, run="run-a")
SECOND = storage.Writer(job_id=2, attempt=1, run="run-b")


def now(what: str, call):
    """A `transfer` that calls at once (the runners' retry within the lease is not tested here)."""
    return call()


def put(tmp_path: Path, location: storage.S3Location, writer: storage.Writer, data: bytes):
    path = tmp_path / f"{writer.run}.bin"
    path.write_bytes(data)
    storage.upload(path, location, writer, should_stop=lambda: False)


def fetch(url: str) -> bytes:
    answer = requests.get(url, timeout=30)  # no credentials: the link is enough
    assert answer.status_code == 200, answer.text
    return answer.content


def job_with_outputs(records: list[dict], dest: str = "s3:///shared/") -> Job:
    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                          source="s3:///src/a.mp4", dest=dest)  # fmt: skip
    job.update(actions=[Job.outputs.set(records)])
    return job


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


def test_an_unversioned_bucket_records_no_version_and_links_the_current_object(aws, tmp_path):
    bucket = settings().input_bucket  # provisioning versions the output bucket only
    assert "Status" not in boto3.client("s3").get_bucket_versioning(Bucket=bucket)
    plain = storage.S3Location(bucket, "plain/out.mp4")
    put(tmp_path, plain, FIRST, b"first")
    put(tmp_path, plain, SECOND, b"second")
    records = record_versions([{"key": plain.key, "uri": plain.uri, "size": 6}], SECOND, now)
    assert records == [{"key": plain.key, "uri": plain.uri, "size": 6}]
    (view,) = jobs.output_views(job_with_outputs(records, dest=f"s3://{bucket}/plain/"))
    assert "versionId" not in view["url"] and fetch(view["url"]) == b"second"


def test_a_segment_folder_summary_records_no_version_and_asks_s3_nothing():
    summary = {"key": "out/360p/", "kind": "segments", "rendition": "360p", "count": 3, "size": 9}
    asked: list[str] = []
    records = record_versions([dict(summary)], FIRST, lambda what, call: asked.append(what))
    assert records == [summary] and asked == []


# --- serving the version ----------------------------------------------------------------


def test_a_link_whose_version_was_removed_is_a_410_with_the_reason(api, tmp_path):
    admin = api.login(*ADMIN)
    shared = storage.S3Location(settings().output_bucket, "shared/out.mp4")
    put(tmp_path, shared, FIRST, b"first")
    records = record_versions([{"key": shared.key, "uri": shared.uri, "size": 5}], FIRST, now)
    version = records[0]["version_id"]
    job = job_with_outputs(records)
    put(tmp_path, shared, SECOND, b"second")  # another job's upload: current now
    listed = api.call("GET", f"/api/jobs/{job.id}/outputs", token=admin)
    assert listed.status_code == 200 and listed.data["items"][0]["version_id"] == version
    assert fetch(listed.data["items"][0]["url"]) == b"first"

    boto3.client("s3").delete_object(Bucket=shared.bucket, Key=shared.key, VersionId=version)
    gone = api.call("GET", f"/api/jobs/{job.id}/outputs", token=admin)
    assert gone.status_code == 410, gone.data
    assert shared.key in gone.data["message"] and "restart the job" in gone.data["message"]
    assert api.call("GET", f"/api/jobs/{job.id}", token=admin).status_code == 200


# --- two jobs, one dest, real encodes -----------------------------------------------------


def small_clip(path: Path, seed: int) -> Path:
    """4.8 s at 30 fps with a keyframe a second, so the graph can cut it into two chunks."""
    return make.generate(
        path,
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30,noise=alls=7:allf=t:all_seed={seed}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "4.8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
    )  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Two tiny clips unlike each other (their noise is seeded differently)."""
    root = tmp_path_factory.mktemp("versions")
    return {name: small_clip(root / f"{name}.mp4", seed) for name, seed in (("one", 1), ("two", 2))}


def upload_source(path: Path) -> str:
    boto3.client("s3").upload_file(str(path), settings().input_bucket, f"src/{path.name}")
    return f"s3:///src/{path.name}"


def current_bytes(job_id: int) -> dict[str, bytes]:
    """What the job just published, read as the keys' current objects right after it ended."""
    s3, bucket = boto3.client("s3"), settings().output_bucket
    return {
        o["key"]: s3.get_object(Bucket=bucket, Key=o["key"])["Body"].read()
        for o in Job.get(job_id).outputs
        if o.get("uri")
    }


def assert_each_link_serves_its_own_jobs_bytes(api, published: dict[int, dict[str, bytes]]):
    admin = api.login(*ADMIN)
    one, two = published.values()
    assert one.keys() == two.keys() and any(one[k] != two[k] for k in one)
    for job_id, wrote in published.items():
        listed = api.call("GET", f"/api/jobs/{job_id}/outputs", token=admin)
        assert listed.status_code == 200, listed.data
        links = {o["key"]: o["url"] for o in listed.data["items"] if o.get("url")}
        assert links.keys() == wrote.keys()
        assert all("versionId=" in url for url in links.values())
        assert {key: fetch(url) for key, url in links.items()} == wrote
        view = api.call("GET", f"/api/jobs/{job_id}", token=admin).data["job"]
        assert {o["key"]: fetch(o["url"]) for o in view["outputs"] if o.get("url")} == wrote


@pytest.mark.slow
def test_two_single_jobs_with_one_dest_each_link_serves_its_own_bytes(api, scratch, sources):
    published = {}
    for name in ("one", "two"):
        job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                              source=upload_source(sources[name]), dest="s3:///shared/")  # fmt: skip
        body = json.dumps({"job_id": int(job.id), "attempt": 1})
        assert run_message(body, worker_id=f"w-{name}").result == "completed"
        plan = jobs.plan_view(Job.get(job.id))
        assert plan is not None and plan["mode"] == "single"  # the single-job pipeline
        published[int(job.id)] = current_bytes(int(job.id))
    assert_each_link_serves_its_own_jobs_bytes(api, published)


@pytest.mark.slow
@pytest.mark.usefixtures("chunky")
def test_two_graph_jobs_with_one_dest_each_link_serves_its_own_bytes(api, monkeypatch, sources):
    monkeypatch.setenv("OE_CHUNK_SECONDS", "2")  # two chunks of each 4.8 s clip
    published = {}
    for name in ("one", "two"):
        job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                              source=upload_source(sources[name]), dest="s3:///shared/")  # fmt: skip
        Drain().until(ended(job), seconds=120)
        stored = Job.get(job.id)
        assert stored.status == "completed", stored.error
        plan = jobs.plan_view(stored)
        assert plan is not None and plan["mode"] == "chunked" and plan["chunks"] == 2
        published[int(job.id)] = current_bytes(int(job.id))
    assert_each_link_serves_its_own_jobs_bytes(api, published)
