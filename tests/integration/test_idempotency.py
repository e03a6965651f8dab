"""Idempotency-Key on POST /api/jobs, /api/uploads and /api/presets: a retry returns the first
answer and creates nothing; another body is a 422; keys are each user's own."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from chalicelib.config import settings
from chalicelib.store.models import IdempotencyRecord, Job

ROOT = Path(__file__).resolve().parents[2]
JOB = {"preset": "h264_baseline_360p_600", "source": "src/a.mp4", "dest": "out/a/"}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def job_count() -> int:
    return sum(1 for _ in Job.scan())


def test_a_retry_with_the_same_key_returns_the_first_job_and_makes_no_other(api):
    token = api.user("maker", "operator")
    first = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("retry-1"))
    assert first.status_code == 200, first.data
    again = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("retry-1"))
    assert again.status_code == 200 and again.data == first.data
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    # The draft's alias is the same route: the same key there is the same request.
    alias = api.call("POST", "/api/job", JOB, token=token, headers=keyed("retry-1"))
    assert alias.data == first.data
    assert job_count() == 1
    # No key, no promise: each POST is a new job.
    assert (
        api.call("POST", "/api/jobs", JOB, token=token).data["job"]["id"] != first.data["job"]["id"]
    )


def test_the_same_key_with_another_body_is_a_422_that_says_so(api):
    token = api.user("maker", "operator")
    api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("k-2"))
    other = api.call(
        "POST", "/api/jobs", {**JOB, "dest": "out/b/"}, token=token, headers=keyed("k-2")
    )
    assert other.status_code == 422
    assert "already used with a different request body" in other.data["message"]
    assert job_count() == 1


def test_keys_are_each_users_own_and_each_routes_own(api):
    ana = api.user("ana-maker", "operator")
    bob = api.user("bob-maker", "operator")
    a = api.call("POST", "/api/jobs", JOB, token=ana, headers=keyed("shared"))
    b = api.call("POST", "/api/jobs", JOB, token=bob, headers=keyed("shared"))
    assert a.status_code == b.status_code == 200
    assert a.data["job"]["id"] != b.data["job"]["id"] and job_count() == 2
    upload = {"filename": "a.mp4", "size": 10, "content_type": "video/mp4"}
    r = api.call("POST", "/api/uploads", upload, token=ana, headers=keyed("shared"))
    assert r.status_code == 201, r.data


def test_an_upload_and_a_preset_are_made_once_per_key(api):
    token = api.user("maker", "operator")
    body = {"filename": "a.mp4", "size": 10, "content_type": "video/mp4"}
    first = api.call("POST", "/api/uploads", body, token=token, headers=keyed("up-1"))
    again = api.call("POST", "/api/uploads", body, token=token, headers=keyed("up-1"))
    assert first.status_code == again.status_code == 201
    assert again.data["upload"]["id"] == first.data["upload"]["id"]
    preset = {
        "name": "once_only",
        "data": '{"raw": ["-c:v libx264", "-crf 30"]}',
        "output": "o.mp4",
    }
    made = api.call("POST", "/api/presets", preset, token=token, headers=keyed("pr-1"))
    assert made.status_code == 200, made.data
    replay = api.call("POST", "/api/presets", preset, token=token, headers=keyed("pr-1"))
    assert replay.status_code == 200 and replay.data == made.data
    # Without the key the name is taken: the replay did not try to create it again.
    assert api.call("POST", "/api/presets", preset, token=token).status_code == 409


def test_an_error_answer_is_not_kept_so_a_corrected_retry_runs(api):
    token = api.user("maker", "operator")
    bad = api.call(
        "POST", "/api/jobs", {**JOB, "preset": "nope"}, token=token, headers=keyed("k-3")
    )
    assert bad.status_code == 400
    fixed = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("k-3"))
    assert fixed.status_code == 200, fixed.data


def test_a_malformed_key_is_a_clear_400(api):
    token = api.user("maker", "operator")
    for key in ("", "x" * 256, "has space", "é"):
        r = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed(key))
        assert r.status_code == 400 and "Idempotency-Key" in r.data["message"], (key, r.data)
    assert job_count() == 0


def test_twenty_concurrent_identical_posts_with_one_key_make_one_job(api):
    token = api.user("maker", "operator")
    start = threading.Barrier(20)

    def post(_i: int):
        start.wait()
        return api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("burst"))

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    assert [r.status_code for r in answers] == [200] * 20, [r.data for r in answers]
    assert {r.data["job"]["id"] for r in answers} == {answers[0].data["job"]["id"]}
    assert job_count() == 1
    assert sum("Idempotent-Replayed" in r.headers for r in answers) == 19


def test_keys_are_kept_24_hours_in_a_table_with_ttl(api):
    token = api.user("maker", "operator")
    api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("ttl-1"))
    (record,) = list(IdempotencyRecord.scan())
    assert record.id.startswith("jobs#") and record.status == "COMPLETED"
    assert abs(record.expiration.timestamp() - (time.time() + 24 * 3600)) < 60
    ddb = boto3.client("dynamodb", region_name=settings().region)
    ttl = ddb.describe_time_to_live(TableName=settings().table("idempotency"))
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expiration",
    }


def test_importing_the_app_does_not_load_the_idempotency_utility():
    code = "import sys, app; print('aws_lambda_powertools.utilities.idempotency' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_a_key_past_its_24_hours_makes_a_new_job_even_before_ttl_removes_it(api):
    from datetime import UTC, datetime, timedelta

    token = api.user("maker", "operator")
    first = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("old-key"))
    (record,) = list(IdempotencyRecord.scan())
    # DynamoDB's TTL removes items up to days late: the expiry itself is what counts.
    record.update(
        actions=[IdempotencyRecord.expiration.set(datetime.now(UTC) - timedelta(hours=1))]
    )
    later = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("old-key"))
    assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
    assert later.data["job"]["id"] != first.data["job"]["id"]


def test_a_first_request_still_running_holds_its_key_and_a_crashed_one_frees_it(api, monkeypatch):
    from chalicelib.api import idempotency

    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.3)
    token = api.user("maker", "operator")
    first = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("held"))
    (record,) = list(IdempotencyRecord.scan())
    now_ms = int(time.time() * 1000)
    record.update(actions=[IdempotencyRecord.status.set("INPROGRESS"),
                           IdempotencyRecord.in_progress_expiration.set(now_ms + 60_000)])  # fmt: skip
    busy = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("held"))
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert "still in progress" in busy.data["message"]
    # Its invocation ended without an answer (a crash, a timeout): the key is free again.
    record.update(actions=[IdempotencyRecord.in_progress_expiration.set(now_ms - 1_000)])
    retried = api.call("POST", "/api/jobs", JOB, token=token, headers=keyed("held"))
    assert retried.status_code == 200 and retried.data["job"]["id"] != first.data["job"]["id"]


def test_the_openapi_document_describes_the_header_on_exactly_the_three_creates():
    from app import app
    from chalicelib.api import openapi

    document = openapi.document(app.routes)
    keyed = {
        (path, method)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
    }
    assert keyed == {("/api/jobs", "post"), ("/api/job", "post"), ("/api/uploads", "post"),
                     ("/api/presets", "post")}  # fmt: skip
    (header,) = document["paths"]["/api/jobs"]["post"]["parameters"]
    assert "422" in header["description"] and header["schema"]["maxLength"] == 255


def test_concurrent_identical_uploads_and_presets_with_one_key_are_made_once(api):
    from chalicelib.store.models import Preset, Upload

    token = api.user("maker", "operator")
    upload = {"filename": "a.mp4", "size": 10, "content_type": "video/mp4"}
    preset = {
        "name": "burst_once",
        "data": '{"raw": ["-c:v libx264", "-crf 30"]}',
        "output": "o.mp4",
    }
    for path, body, status in (("/api/uploads", upload, 201), ("/api/presets", preset, 200)):
        start = threading.Barrier(10)

        def post(_i: int, path=path, body=body, start=start):
            start.wait()
            return api.call("POST", path, body, token=token, headers=keyed(f"burst{path}"))

        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(post, range(10)))
        assert [r.status_code for r in answers] == [status] * 10, [r.data for r in answers]
        assert all(r.data == answers[0].data for r in answers)
    assert sum(1 for _ in Upload.scan()) == 1
    assert sum(p.name == "burst_once" for p in Preset.scan()) == 1
