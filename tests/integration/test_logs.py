"""Logs reach CloudWatch: with `app` imported as Lambda imports it, INFO records come out as JSON."""

from __future__ import annotations

import json
import logging
import time
import uuid

import boto3
import pytest
from chalice.local import LambdaContext

from chalicelib import logs
from chalicelib.config import settings
from chalicelib.jobs import records as jobs
from chalicelib.store.models import Job
from tests.conftest import ADMIN


def lambda_context(function: str) -> LambdaContext:
    return LambdaContext(function_name=f"openencoder-local-{function}", memory_size=128,
                         max_runtime_ms=900_000)  # fmt: skip


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def scheduled_event() -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "000000000000", "time": "2026-11-28T00:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:0:rule/x"],
            "detail": {}}  # fmt: skip


def sqs_event(body: str) -> dict:
    return {"Records": [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body,
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                         "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:0:openencoder-local-encode"}]}  # fmt: skip


def test_the_reconcile_handler_logs_its_decisions_at_info_as_json(aws, capsys):
    import app as lambda_module  # what the runtime does with the handler "app.reconcile"

    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600", source="src/x.mp4",
                          dest="out/")  # fmt: skip
    job.update(actions=[Job.status.set("encoding"), Job.lease_owner.set("worker:dead:1"),
                        Job.lease_expires.set(int(time.time()) - 60)])  # fmt: skip
    context = lambda_context("reconcile")
    capsys.readouterr()
    lambda_module.reconcile(scheduled_event(), context)
    records = json_lines(capsys.readouterr().out)
    decisions = [
        r for r in records if isinstance(r["message"], dict) and "decision" in r["message"]
    ]
    assert {d["message"]["decision"] for d in decisions} >= {"recovered leases", "no droplets"}
    for record in decisions:
        assert record["level"] == "INFO"
        assert record["request_id"] == context.aws_request_id
        assert record["function"] == "openencoder-local-reconcile"


@pytest.mark.slow
def test_the_encode_handler_logs_each_phase_with_job_attempt_and_request_id(
    aws, media, scratch, capsys
):
    import app as lambda_module

    boto3.client("s3").upload_file(str(media["clip"]), settings().input_bucket, "src/log.mp4")
    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                          source="s3:///src/log.mp4", dest="s3:///out/log/")  # fmt: skip
    context = lambda_context("encode")
    capsys.readouterr()
    body = json.dumps({"job_id": int(job.id), "attempt": 1})
    assert lambda_module.encode(sqs_event(body), context) == {"batchItemFailures": []}
    records = json_lines(capsys.readouterr().out)
    phases = [r for r in records if r.get("status") and r.get("job_id") == int(job.id)]
    assert [r["status"] for r in phases] == [
        "downloading", "probing", "encoding", "uploading", "completed",
    ]  # fmt: skip
    for record in phases:
        assert record["level"] == "INFO" and record["attempt"] == 1
        assert record["request_id"] == context.aws_request_id
        assert record["function"] == "openencoder-local-encode"
        assert "timestamp" in record and record["service"] == "openencoder"


def test_extras_become_keys_and_libraries_stay_quiet(aws, capsys):
    import app  # noqa: F401 - configures logging as at a cold start

    with logs.bind(request_id="req-1"):
        logging.getLogger("openencoder.test").info("hello", extra={"job_id": 7, "attempt": 2})
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
    (record,) = json_lines(capsys.readouterr().out)
    assert record["message"] == "hello" and record["level"] == "INFO"
    assert (record["job_id"], record["attempt"], record["request_id"]) == (7, 2, "req-1")
