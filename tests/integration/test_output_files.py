"""GET /api/jobs/:id/files lists every object of a job's outputs, with a link each: the
objects of a folder output (segments, numbered thumbnails) from an S3 list under the
job's dest, page by page, and an output of one object at the version the job recorded.
"""

from __future__ import annotations

import boto3
import pytest
import requests

from chalicelib.config import settings
from chalicelib.jobs import records as jobs
from chalicelib.store import storage
from chalicelib.store.models import Job
from tests.conftest import ADMIN

DEST = "ladder/"


@pytest.fixture
def admin(api):
    return api.login(*ADMIN)


def put(key: str, body: bytes) -> str | None:
    answer = boto3.client("s3").put_object(Bucket=settings().output_bucket, Key=key, Body=body)
    return answer.get("VersionId")


@pytest.fixture
def ladder_job(aws):
    """A job whose outputs are recorded as the graph records a ladder's."""
    bucket = settings().output_bucket
    objects = {
        "master.m3u8": b"#EXTM3U\n",
        "360p/index.m3u8": b"#EXTM3U\n#EXT-X-MAP:URI=init.mp4\n",
        "360p/init.mp4": b"init",
        **{f"360p/seg_{n:05d}.m4s": b"x" * n for n in range(1, 6)},
        "thumbnails/0001.jpg": b"jpg1",
        "thumbnails/0002.jpg": b"jpg2",
        "thumbnails/sprite.jpg": b"sprite",
    }
    versions = {name: put(DEST + name, body) for name, body in objects.items()}
    put("elsewhere/360p/seg_00001.m4s", b"not this job's")  # outside the dest: never listed

    def single(name: str, kind: str) -> dict:
        return {"key": DEST + name, "uri": f"s3://{bucket}/{DEST}{name}", "kind": kind,
                "size": len(objects[name]), "version_id": versions[name]}  # fmt: skip

    records = [
        single("master.m3u8", "playlist"),
        single("360p/index.m3u8", "playlist"),
        {"key": DEST + "360p/", "kind": "segments", "rendition": "360p", "count": 5, "size": 19},
        {"key": DEST + "thumbnails/", "kind": "thumbnails", "count": 2, "size": 8},
        single("thumbnails/sprite.jpg", "thumbnail"),
    ]
    job = jobs.create_job(owner=ADMIN[0], preset="h264_ladder_hls_dash",
                          source="s3:///src/a.mp4", dest=f"s3:///{DEST}")  # fmt: skip
    job.update(actions=[Job.outputs.set(records), Job.status.set("completed")])
    return job, objects


def every_page(api, token: str, job_id: int, **query) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        path = f"/api/jobs/{job_id}/files?" + "&".join(f"{k}={v}" for k, v in params.items())
        r = api.call("GET", path, token=token)
        assert r.status_code == 200, r.data
        assert r.data["count"] == len(r.data["items"])
        pages.append(r.data["items"])
        cursor = r.data["next"]
        if cursor is None:
            return pages


def test_every_object_of_every_output_is_listed_once_page_by_page(api, admin, ladder_job):
    job, objects = ladder_job
    pages = every_page(api, admin, int(job.id), count=3)
    assert len(pages) > 1 and all(len(p) <= 3 for p in pages)
    items = [i for page in pages for i in page]
    assert sorted(i["name"] for i in items) == sorted(objects)  # each once, nothing else
    by_name = {i["name"]: i for i in items}
    assert by_name["360p/seg_00003.m4s"]["output"] == "360p/"
    assert by_name["thumbnails/0002.jpg"]["output"] == "thumbnails/"
    assert by_name["thumbnails/sprite.jpg"]["output"] == "thumbnails/sprite.jpg"
    for item in items:
        assert item["size"] == len(objects[item["name"]]) and len(item["etag"]) == 32
        assert item["key"] == DEST + item["name"]
    # The link is enough to fetch the bytes; one object's link names the job's version.
    assert "versionId=" in by_name["master.m3u8"]["url"]
    assert requests.get(by_name["360p/seg_00004.m4s"]["url"], timeout=10).content == b"xxxx"


def test_one_output_is_picked_by_its_name(api, admin, ladder_job):
    job, _ = ladder_job
    for name in ("360p", "360p/", DEST + "360p/"):
        items = [i for p in every_page(api, admin, int(job.id), output=name) for i in p]
        assert sorted(i["name"] for i in items) == [
            "360p/init.mp4",
            *(f"360p/seg_{n:05d}.m4s" for n in range(1, 6)),
        ]
    r = api.call("GET", f"/api/jobs/{int(job.id)}/files?output=1080p", token=admin)
    assert r.status_code == 404 and "/outputs lists them" in r.data["message"]


def test_outputs_are_named_under_the_dest(api, admin, ladder_job):
    job, _ = ladder_job
    r = api.call("GET", f"/api/jobs/{int(job.id)}/outputs", token=admin)
    assert [o["name"] for o in r.data["items"]] == [
        "master.m3u8", "360p/index.m3u8", "360p/", "thumbnails/", "thumbnails/sprite.jpg"
    ]  # fmt: skip


def test_a_bad_cursor_is_a_400_and_a_removed_version_a_410(api, admin, ladder_job):
    job, _ = ladder_job
    r = api.call("GET", f"/api/jobs/{int(job.id)}/files?cursor=bm90IGpzb24", token=admin)
    assert r.status_code == 400 and "cursor" in r.data["message"]
    master = storage.S3Location(settings().output_bucket, DEST + "master.m3u8")
    boto3.client("s3").delete_object(
        Bucket=master.bucket, Key=master.key, VersionId=job.outputs[0]["version_id"]
    )
    r = api.call("GET", f"/api/jobs/{int(job.id)}/files", token=admin)
    assert r.status_code == 410 and "restart the job" in r.data["message"]
