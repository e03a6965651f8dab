"""Job routes: create and queue, read, list, cancel and restart per the lifecycle."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.config import settings
from tests.conftest import ADMIN

JOB = {
    "preset": "h264_baseline_360p_600",
    "source": "s3:///src/clip.mp4",
    "dest": "s3:///dst/clip/",
}


@pytest.fixture
def admin(api):
    return api.login(*ADMIN)


def queued_messages() -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().encode_queue)["QueueUrl"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


@pytest.mark.parametrize("path", ["/api/jobs", "/api/job"])
def test_create_writes_the_job_then_queues_it(api, admin, path):
    r = api.call("POST", path, JOB, token=admin)
    assert r.status_code == 200
    assert r.data["message"] == "Job created" and r.data["status"] == 200
    job = r.data["job"]
    assert job["id"] == 1 and len(job["guid"]) == 20
    assert job["status"] == "queued" and job["attempt"] == 1 and job["owner"] == ADMIN[0]
    assert job["source"] == f"s3://{settings().input_bucket}/src/clip.mp4"
    assert job["dest"] == f"s3://{settings().output_bucket}/dst/clip/"
    assert queued_messages() == [{"job_id": 1, "attempt": 1}]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"preset": "nope"}, "no preset named 'nope'"),
        ({"source": "s3://elsewhere/x.mp4"}, "not one this stage uses"),
        ({"source": "s3:///a/../b.mp4"}, "'..'"),
        ({"source": "s3:///"}, "not a folder"),
        ({"dest": "s3://openencoder-local-input/incoming/x/"}, "watch prefix"),
        ({"preset": 5}, "preset"),
    ],
)
def test_bad_jobs_are_400_and_nothing_is_queued(api, admin, change, message):
    r = api.call("POST", "/api/jobs", {**JOB, **change}, token=admin)
    assert r.status_code == 400
    assert message in r.data["message"]
    assert queued_messages() == []


def test_inactive_preset_is_refused(api, admin):
    api.call("PUT", "/api/presets/1", {"active": False}, token=admin)
    r = api.call("POST", "/api/jobs", JOB, token=admin)
    assert r.status_code == 400 and "not active" in r.data["message"]


def test_guest_cannot_create_but_can_read(api, admin):
    guest = api.user("gus", "guest")
    assert api.call("POST", "/api/jobs", JOB, token=guest).status_code == 403
    job = api.call("POST", "/api/jobs", JOB, token=admin).data["job"]
    assert api.call("GET", f"/api/jobs/{job['id']}", token=guest).status_code == 200


def test_get_by_id_or_guid_and_status(api, admin):
    job = api.call("POST", "/api/jobs", JOB, token=admin).data["job"]
    by_id = api.call("GET", f"/api/jobs/{job['id']}", token=admin).data
    by_guid = api.call("GET", f"/api/jobs/{job['guid']}", token=admin).data
    assert by_id["guid"] == by_guid["guid"] == job["guid"]
    assert by_id["preset"] == "h264_baseline_360p_600" and by_id["created_date"].endswith("Z")
    status = api.call("GET", f"/api/jobs/{job['guid']}/status", token=admin).data
    assert status["status"] == 200 and status["job_status"] == "queued"


@pytest.mark.parametrize("ref", ["424242", "bkl9gbj5bidgus7kjoog", "zz"])
def test_unknown_jobs_are_404(api, admin, ref):
    for suffix in ("", "/status"):
        r = api.call("GET", f"/api/jobs/{ref}{suffix}", token=admin)
        assert r.status_code == 404 and r.data["status"] == 404
    assert api.call("POST", f"/api/jobs/{ref}/cancel", token=admin).status_code == 404


def test_list_is_newest_first_with_pages_and_cursor(api, admin):
    for _ in range(7):
        api.call("POST", "/api/jobs", JOB, token=admin)
    first = api.call("GET", "/api/jobs?count=3", token=admin).data
    assert first["count"] == 7
    assert [j["id"] for j in first["items"]] == [7, 6, 5]
    page3 = api.call("GET", "/api/jobs?count=3&page=3", token=admin).data
    assert [j["id"] for j in page3["items"]] == [1]
    second = api.call("GET", f"/api/jobs?count=3&cursor={first['next']}", token=admin).data
    assert [j["id"] for j in second["items"]] == [4, 3, 2]
    last = api.call("GET", f"/api/jobs?count=3&cursor={second['next']}", token=admin).data
    assert [j["id"] for j in last["items"]] == [1] and last["next"] is None


@pytest.mark.parametrize("query", ["count=0", "count=101", "page=0", "page=x", "cursor=garbage!"])
def test_bad_list_parameters_are_400(api, admin, query):
    r = api.call("GET", f"/api/jobs?{query}", token=admin)
    assert r.status_code == 400


def test_cancel_then_restart_follows_the_lifecycle(api, admin):
    job = api.call("POST", "/api/jobs", JOB, token=admin).data["job"]
    queued_messages()
    r = api.call("POST", f"/api/jobs/{job['id']}/restart", token=admin)
    assert r.status_code == 409 and "queued" in r.data["message"]
    assert api.call("POST", f"/api/jobs/{job['id']}/cancel", token=admin).data == {
        "status": 200, "job_status": "cancelled"
    }  # fmt: skip
    r = api.call("POST", f"/api/jobs/{job['id']}/cancel", token=admin)
    assert r.status_code == 409 and "already cancelled" in r.data["message"]
    r = api.call("POST", f"/api/jobs/{job['id']}/restart", token=admin)
    assert r.status_code == 200 and r.data["attempt"] == 2
    got = api.call("GET", f"/api/jobs/{job['id']}", token=admin).data
    assert got["status"] == "restarting" and got["attempt"] == 2
    assert {"job_id": job["id"], "attempt": 2} in queued_messages()


def test_queue_failure_ends_the_job_in_error_not_stuck(api, admin, monkeypatch):
    from chalicelib.store import queues

    def broken(*_a, **_k):
        raise ConnectionError("sqs down")

    monkeypatch.setattr(queues, "send_job", broken)
    r = api.call("POST", "/api/jobs", JOB, token=admin)
    assert r.status_code == 503 and "restart it" in r.data["message"]
    job = api.call("GET", "/api/jobs/1", token=admin).data
    assert job["status"] == "error" and "could not be queued" in job["error"]["message"]


@pytest.mark.parametrize("body", ["", "null", "{}", '{"preset": null}', "x" * 10])
def test_garbage_job_bodies_are_400(api, admin, body):
    r = api.call("POST", "/api/jobs", body, token=admin)
    assert r.status_code == 400 and set(r.data) == {"status", "message"}


def test_stats_count_jobs_by_status_from_the_counters(api, admin):
    first = api.call("POST", "/api/jobs", JOB, token=admin).data["job"]
    api.call("POST", "/api/jobs", JOB, token=admin)
    api.call("POST", f"/api/jobs/{first['id']}/cancel", token=admin)
    guest = api.user("gus", "guest")
    r = api.call("GET", "/api/stats", token=guest)
    assert r.status_code == 200
    counts = r.data["jobs"]
    assert counts["queued"] == 1 and counts["cancelled"] == 1 and counts["total"] == 2
    assert counts["encoding"] == 0 and counts["completed"] == 0
    assert api.call("GET", "/api/stats").status_code == 401


def test_a_backend_failure_is_a_503_with_retry_after_and_nothing_is_written(api, admin):
    from tests.aws_faults import SERVER_ERROR, Rule, injected

    every_try = Rule("dynamodb", "TransactWriteItems", times=100, error=SERVER_ERROR)
    with injected(every_try):
        r = api.call("POST", "/api/jobs", JOB, token=admin)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "try again" in r.data["message"] and r.data["status"] == 503
    assert every_try.failed >= 2  # botocore retried before giving up
    listed = api.call("GET", "/api/jobs", token=admin).data
    assert listed["count"] == 0, listed
    assert api.call("GET", "/api/stats", token=admin).data["jobs"]["total"] == 0
    assert queued_messages() == []
    assert api.call("POST", "/api/jobs", JOB, token=admin).status_code == 200
