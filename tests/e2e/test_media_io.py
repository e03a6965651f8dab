"""Media in and out over real HTTP against the local stack: direct uploads with plain
`requests` to the presigned URLs, encodes of the uploads, download links, and signed
webhooks delivered by the stack's own webhooks function to a loopback receiver.

One stack for the module, with a small single-PUT limit so a ~11 MiB file goes
up as a 3-part multipart upload (S3's smallest part is 5 MiB).
"""

from __future__ import annotations

import itertools

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
            OE_WEBHOOK_ALLOW_LOOPBACK="true",
            OE_WEBHOOK_BACKOFF_SECONDS="1",
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


def wait_for(stack, auth, ref, status="completed"):
    def done():
        job = requests.get(f"{stack['api']}/jobs/{ref}", headers=auth, timeout=10).json()
        assert job["status"] not in {"error", "cancelled", "completed"} - {status}, job
        return job if job["status"] == status else None

    return wait_until(done, 120, f"job {ref} to be {status}")


def encode(stack, auth, upload_id, dest, **extra):
    body = {"preset": "h264_baseline_360p_600", "source": f"upload:{upload_id}", "dest": dest}
    r = requests.post(f"{stack['api']}/jobs", json={**body, **extra}, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    return wait_for(stack, auth, r.json()["job"]["id"])


def uploaded(stack, auth, path, content_type="video/mp4"):
    upload = start_upload(stack, auth, path, content_type)
    put = requests.put(upload["url"], data=path.read_bytes(), headers=upload["headers"], timeout=60)
    assert put.status_code == 200, put.text
    complete(stack, auth, upload["id"])
    return upload["id"]


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


def put_bytes(upload, data):
    put = requests.put(upload["url"], data=data, headers=upload["headers"], timeout=60)
    assert put.status_code == 200, put.text
    return put


def job_from(stack, auth, upload_id, dest):
    body = {"preset": "h264_baseline_360p_600", "source": f"upload:{upload_id}", "dest": dest}
    return requests.post(f"{stack['api']}/jobs", json=body, headers=auth, timeout=30)


def test_a_job_made_right_after_a_put_finds_the_upload_complete(stack, auth, clips):
    upload = start_upload(stack, auth, clips["small"], "video/mp4")
    put_bytes(upload, clips["small"].read_bytes())
    r = job_from(stack, auth, upload["id"], "s3:///at-once/")  # racing the S3 event: either wins
    assert r.status_code == 200, r.text
    assert wait_for(stack, auth, r.json()["job"]["id"])["source"].endswith(upload["key"])


def test_a_put_completes_its_upload_by_the_s3_event(stack, auth, clips):
    upload = start_upload(stack, auth, clips["small"], "video/mp4")
    put = put_bytes(upload, clips["small"].read_bytes())
    url = f"{stack['api']}/uploads/{upload['id']}"

    def completed():
        view = requests.get(url, headers=auth, timeout=10).json()["upload"]
        return view if view["status"] == "complete" else None

    view = wait_until(completed, 30, "the upload's S3 event to complete it")
    assert view["etag"] == put.headers["ETag"].strip('"')
    assert job_from(stack, auth, upload["id"], "s3:///after-event/").status_code == 200


def test_a_put_of_fewer_bytes_than_declared_is_a_clear_409(stack, auth, clips):
    upload = start_upload(stack, auth, clips["small"], "video/mp4")
    put_bytes(upload, clips["small"].read_bytes()[:-100])
    r = job_from(stack, auth, upload["id"], "s3:///short/")
    assert r.status_code == 409, r.text
    declared = clips["small"].stat().st_size
    assert f"{declared - 100} bytes arrived but {declared} were declared" in r.json()["message"]


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


# --- webhooks -------------------------------------------------------------------------


def test_a_receiver_verifies_signed_completed_failed_and_cancelled_events(
    stack, auth, clips, tmp_path
):
    from standardwebhooks import Webhook as Verifier

    from tests.receiver import Receiver

    api = stack["api"]
    with Receiver() as receiver:
        body = {"url": receiver.url + "/events", "events": ["job.completed", "job.failed",
                                                             "job.cancelled"]}  # fmt: skip
        r = requests.post(f"{api}/webhooks", json=body, headers=auth, timeout=10)
        assert r.status_code == 201, r.text
        secret = r.json()["webhook"]["secret"]
        # completed, with the job's own notify_url as well
        good = uploaded(stack, auth, clips["small"])
        body = {"preset": "h264_baseline_360p_600", "source": f"upload:{good}", "dest": "s3:///wh/",
                "notify_url": receiver.url + "/notify"}  # fmt: skip
        created = requests.post(f"{api}/jobs", json=body, headers=auth, timeout=10).json()
        completed = wait_for(stack, auth, created["job"]["id"])
        # failed: text posing as a video
        text = tmp_path / "not-a-video.mp4"
        text.write_text("not a video\n" * 100)
        body = {"preset": "h264_baseline_360p_600", "source": f"upload:{uploaded(stack, auth, text)}",
                "dest": "s3:///wh-bad/"}  # fmt: skip
        failed_id = requests.post(f"{api}/jobs", json=body, headers=auth, timeout=10).json()["job"][
            "id"
        ]
        wait_for(stack, auth, failed_id, "error")
        # cancelled at once: a 20 s source upscaled to 1080p is still running
        long_clip = make.av_clip(tmp_path / "long.mp4", seconds=20, size="640x360", bitrate="400k")
        body = {"preset": "h264_main_1080p_6000", "source": f"upload:{uploaded(stack, auth, long_clip)}",
                "dest": "s3:///wh-cancel/"}  # fmt: skip
        cancel_id = requests.post(f"{api}/jobs", json=body, headers=auth, timeout=10).json()["job"][
            "id"
        ]
        r = requests.post(f"{api}/jobs/{cancel_id}/cancel", headers=auth, timeout=10)
        assert r.status_code == 200, r.text

        def events_seen():
            seen = {}
            for got in receiver.at("/events"):
                payload = Verifier(secret).verify(got.body, got.headers)  # raises if forged
                seen[(payload["type"], payload["data"]["id"])] = payload
            wanted = {("job.completed", completed["id"]), ("job.failed", failed_id),
                      ("job.cancelled", cancel_id)}  # fmt: skip
            return seen if wanted <= set(seen) else None

        seen = wait_until(events_seen, 90, "the three job events at the receiver")
        (notified,) = wait_until(lambda: receiver.at("/notify"), 30, "the job's notify_url")
    done = seen[("job.completed", completed["id"])]["data"]
    assert done["status"] == "completed" and done["outputs"][0]["url"].startswith("http")
    assert requests.get(done["outputs"][0]["url"], timeout=30).status_code == 200
    failed = seen[("job.failed", failed_id)]["data"]
    assert failed["status"] == "error" and failed["error"]["message"]
    own = Verifier(created["notify"]["secret"]).verify(notified.body, notified.headers)
    assert own["type"] == "job.completed" and own["data"]["id"] == completed["id"]


def test_a_receiver_failing_twice_gets_three_attempts_with_growing_delays(stack, auth):
    from tests.receiver import Receiver

    api = stack["api"]
    with Receiver() as receiver:
        receiver.answers["/flaky"] = [500, 500, 200]
        body = {"url": receiver.url + "/flaky"}
        hook = requests.post(f"{api}/webhooks", json=body, headers=auth, timeout=10).json()[
            "webhook"
        ]
        r = requests.post(f"{api}/webhooks/{hook['id']}/test", headers=auth, timeout=10)
        assert r.status_code == 202, r.text

        def three_attempts():
            got = requests.get(f"{api}/webhooks/{hook['id']}/deliveries", headers=auth, timeout=10)
            items = got.json()["items"]
            return items if len(items) == 3 else None

        log = list(reversed(wait_until(three_attempts, 60, "three delivery attempts")))
        arrivals = [r.at for r in receiver.at("/flaky")]
    assert [(d["attempt"], d["status_code"]) for d in log] == [(1, 500), (2, 500), (3, 200)]
    assert len({d["id"] for d in log}) == 1 and all(d["latency_ms"] >= 0 for d in log)
    from datetime import datetime

    def waited(d):
        return (
            datetime.fromisoformat(d["next_try"]) - datetime.fromisoformat(d["created"])
        ).total_seconds()

    assert [round(waited(d)) for d in log[:2]] == [1, 4] and log[2]["next_try"] is None
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 2 and gaps[0] >= 0.9 and gaps[1] >= 3.9  # never earlier than scheduled


# --- the new routes under schemathesis ---------------------------------------------------

NEW_ROUTES = (
    r"^/api/(uploads|webhooks|settings|worker/|refresh-token|update-password|health"
    r"|jobs/\{job_id\}/outputs)"
)


def test_schemathesis_finds_no_server_errors_in_the_new_routes(stack, auth, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.e2e.test_local_stack import with_hostile_numbers

    schema = tmp_path / "openapi.json"
    document = requests.get(f"{stack['api']}/openapi.json", timeout=10).json()
    schema.write_text(json.dumps(with_hostile_numbers(document)))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"), "run", str(schema),
            "--url", stack["api"].removesuffix("/api"), "--checks", "not_a_server_error",
            "--max-examples", "25", "--header", f"Authorization: {auth['Authorization']}",
            "--seed", "2", "--phases", "examples,coverage,fuzzing", "--request-timeout", "20",
            "--include-path-regex", NEW_ROUTES,
        ],
        capture_output=True, text=True, timeout=500, env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    import re

    cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert cases and cases.group(1) == cases.group(2) and int(cases.group(1)) > 300, result.stdout
