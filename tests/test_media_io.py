"""Media in and out over real HTTP against the local stack: direct uploads with plain
`requests` to the presigned URLs, encodes of the uploads, and download links.

One stack for the module, with a small single-PUT limit so a ~11 MiB file goes
up as a 3-part multipart upload (S3's smallest part is 5 MiB).
"""

from __future__ import annotations

import pytest
import requests

from ops.local_stack import running
from tests import media as make
from tests.polling import wait_until

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("media-io-stack")
    with (
        (state / "stack.log").open("w") as log,
        running(
            state,
            output=log,
            OE_BCRYPT_ROUNDS="4",
            OE_UPLOAD_SINGLE_MAX=str(8 * MIB),
            OE_UPLOAD_PART_SIZE=str(5 * MIB),
        ) as (_process, facts),
    ):
        yield facts


@pytest.fixture(scope="module")
def auth(stack):
    admin = stack["admin"]
    r = requests.post(f"{stack['api']}/login", json=admin, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("media-io")
    small = make.av_clip(root / "small.mp4", seconds=2, size="320x240", bitrate="300k")
    # Raw video has a size known in advance: 100 frames of 320x240 4:2:0 are ~11 MiB.
    raw = make.generate(
        root / "raw.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "100",
        "-c:v", "rawvideo", "-pix_fmt", "yuv420p",
    )  # fmt: skip
    return {"small": small, "raw": raw}


def start_upload(stack, auth, path, content_type):
    body = {"filename": path.name, "size": path.stat().st_size, "content_type": content_type}
    r = requests.post(f"{stack['api']}/uploads", json=body, headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["upload"]


def complete(stack, auth, upload_id, body=None):
    r = requests.post(
        f"{stack['api']}/uploads/{upload_id}/complete", json=body or {}, headers=auth, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.json()["upload"]["status"] == "complete"


def encode(stack, auth, upload_id, dest):
    body = {"preset": "h264_baseline_360p_600", "source": f"upload:{upload_id}", "dest": dest}
    r = requests.post(f"{stack['api']}/jobs", json=body, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    ref = r.json()["job"]["id"]

    def done():
        job = requests.get(f"{stack['api']}/jobs/{ref}", headers=auth, timeout=10).json()
        assert job["status"] not in ("error", "cancelled"), job
        return job if job["status"] == "completed" else None

    return wait_until(done, 120, f"job {ref} to complete")


def test_a_clip_uploaded_with_one_presigned_put_is_encoded_by_its_upload_id(stack, auth, clips):
    upload = start_upload(stack, auth, clips["small"], "video/mp4")
    assert upload["method"] == "PUT"
    assert upload["url"].startswith(stack["aws_endpoint"] + "/")  # the local AWS endpoint
    with clips["small"].open("rb") as handle:
        put = requests.put(upload["url"], data=handle, headers=upload["headers"], timeout=60)
    assert put.status_code == 200, put.text
    complete(stack, auth, upload["id"])
    job = encode(stack, auth, upload["id"], "s3:///from-put/")
    assert job["source"].endswith(upload["key"])
    assert job["outputs"][0]["key"] == "from-put/h264_baseline_360p_600.mp4"


def test_a_clip_uploaded_in_three_presigned_parts_is_encoded_by_its_upload_id(stack, auth, clips):
    data = clips["raw"].read_bytes()
    upload = start_upload(stack, auth, clips["raw"], "video/x-matroska")
    assert upload["method"] == "multipart" and len(upload["parts"]) == 3
    size = upload["part_size"]
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * size
        put = requests.put(part["url"], data=data[start : start + size], timeout=60)
        assert put.status_code == 200, put.text
        parts.append({"part_number": part["part_number"], "etag": put.headers["ETag"]})
    complete(stack, auth, upload["id"], {"parts": parts})
    job = encode(stack, auth, upload["id"], "s3:///from-parts/")
    assert job["probe"]["duration"] == pytest.approx(4.0, abs=0.1)


def test_an_output_is_fetched_through_its_download_link(stack, auth, clips):
    upload = start_upload(stack, auth, clips["small"], "video/mp4")
    requests.put(upload["url"], data=clips["small"].read_bytes(), headers=upload["headers"],
                 timeout=60)  # fmt: skip
    complete(stack, auth, upload["id"])
    job = encode(stack, auth, upload["id"], "s3:///linked/")
    listed = requests.get(f"{stack['api']}/jobs/{job['id']}/outputs", headers=auth, timeout=10)
    (output,) = listed.json()["items"]
    assert output["url"].startswith(stack["aws_endpoint"] + "/")
    fetched = requests.get(output["url"], timeout=30)  # no credentials: the link is enough
    assert fetched.status_code == 200 and len(fetched.content) == output["size"]
    assert fetched.content[4:8] == b"ftyp"
