"""Faults that must not lose work: throttling and 5xx (after botocore's own retries) in the
claim, a heartbeat, a phase write and the completion; shared dests; waiting jobs re-sent.

Faults are injected at the AWS protocol level (tests/aws_faults.py); jobs are driven
through the encode function's real SQS batch handler over moto's queues.
"""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from chalice.local import LambdaContext

from chalicelib.config import settings
from chalicelib.fleet import reconcile
from chalicelib.graph import encode_queue
from chalicelib.jobs import records as jobs
from chalicelib.jobs.lifecycle import Status
from chalicelib.presets import catalog as presets
from chalicelib.store import queues, stats, storage
from chalicelib.store.models import Job
from tests.aws_faults import SERVER_ERROR, THROTTLED, Rule, injected
from tests.conftest import ADMIN
from tests.polling import wait_until

pytestmark = pytest.mark.slow


def upload(path, key: str) -> str:
    boto3.client("s3").upload_file(str(path), settings().input_bucket, key)
    return f"s3:///{key}"


def new_job(source: str, dest: str = "s3:///out/shared/", preset: str = "h264_baseline_360p_600"):
    return jobs.create_job(owner=ADMIN[0], preset=preset, source=source, dest=dest)


def encode_messages(visible_only: bool = False) -> int:
    attributes = queues.sqs().get_queue_attributes(
        QueueUrl=queues.queue_url("encode"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]  # fmt: skip
    return sum(int(v) for k, v in attributes.items() if not visible_only or k.endswith("Messages"))


def deliver_once() -> list[dict]:
    """One receive from the encode queue, handed to the encode function as Lambda would."""
    url = queues.queue_url("encode")
    got = (
        queues.sqs()
        .receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1, VisibilityTimeout=600
        )
        .get("Messages", [])
    )
    if not got:
        return []
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:encode",
        }
        for m in got
    ]
    context = LambdaContext(function_name="encode", memory_size=3008, max_runtime_ms=900_000)
    result = encode_queue.handle_batch({"Records": records}, context)
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    for m in got:
        if m["MessageId"] not in failed:  # what Lambda does with a record that succeeded
            queues.sqs().delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [{"id": m["MessageId"], "failed": m["MessageId"] in failed} for m in got]


def drive(job: Job, seconds: float = 120) -> list[dict]:
    """Deliver messages until the job ends; at every step a waiting job has a message."""
    deliveries: list[dict] = []

    def finished() -> bool:
        deliveries.extend(deliver_once())
        stored = Job.get(job.id)
        if stored.status in ("queued", "restarting"):
            assert encode_messages() > 0, "a waiting job without a message"
        return stored.status in ("completed", "error", "cancelled")

    wait_until(finished, seconds, f"job {job.id} to end", every=0.5)
    return deliveries


def completed_once(job: Job) -> None:
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert stats.counts(tuple(s.value for s in Status))["completed"] == 1
    key = stored.outputs[0]["key"]
    head = boto3.client("s3").head_object(Bucket=settings().output_bucket, Key=key)
    assert head["Metadata"]["openencoder-job"] == str(job.id)
    assert head["ContentLength"] == stored.outputs[0]["size"]


@pytest.fixture
def short_lease(monkeypatch):
    monkeypatch.setenv("OE_LEASE_SECONDS", "3")
    monkeypatch.setenv("OE_HEARTBEAT_SECONDS", "0.5")


def has(*words: str):
    return lambda body: all(f'"{w}"' in body for w in words)


def test_a_throttled_claim_keeps_the_message_and_the_job_completes(aws, media, scratch,
                                                                   short_lease):  # fmt: skip
    job = new_job(upload(media["clip"], "src/clip.mp4"))
    # Throttled for as long as the claim is retried (botocore's tries, then ours while the
    # lease would hold), and no longer.
    claim = Rule("dynamodb", "TransactWriteItems", times=10**6, error=THROTTLED,
                 when=has("downloading"))  # fmt: skip
    with injected(claim):
        first = deliver_once()
    assert first and first[0]["failed"]  # reported failed: SQS keeps the message
    assert claim.failed > 4  # more than one whole call, each through botocore's retries
    stored = Job.get(job.id)
    assert stored.status == "queued" and stored.lease_owner is None
    assert encode_messages() == 1
    deliveries = drive(job)
    completed_once(job)
    assert any(d["failed"] for d in first + deliveries)


def test_a_heartbeat_that_fails_for_less_than_the_lease_only_retries(aws, media, scratch,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.setenv("OE_HEARTBEAT_SECONDS", "0.3")
    job = new_job(upload(media["long"], "src/long.mp4"))
    beats = Rule("dynamodb", "UpdateItem", times=8, error=SERVER_ERROR, when=has("lease_owner"))
    with injected(beats):
        deliveries = drive(job)
    assert beats.failed >= 4  # at least one whole renewal failed, after botocore's retries
    assert [d["failed"] for d in deliveries] == [False]  # one run, never handed back
    completed_once(job)


def test_a_heartbeat_that_fails_for_longer_than_the_lease_stops_the_encode(aws, media, scratch,
                                                                           short_lease):  # fmt: skip
    presets.create_preset(presets.PresetInput(name="slow", data=SLOW_PRESET, output="slow.mp4"))
    job = new_job(upload(media["long"], "src/long.mp4"), preset="slow")
    outage = Rule("dynamodb", "UpdateItem", times=10**6, error=SERVER_ERROR,
                  when=has("lease_owner"))  # fmt: skip
    result = {}
    with injected(outage):
        runner = threading.Thread(target=lambda: result.update(d=deliver_once()))
        runner.start()
        runner.join(timeout=120)
    assert not runner.is_alive()
    assert result["d"][0]["failed"]  # stopped and handed back, not recorded as anything
    stored = Job.get(job.id)
    assert stored.status in ("downloading", "probing", "encoding")
    assert encode_messages() == 1
    assert not any(scratch.iterdir())


SLOW_PRESET = '{"raw":["-vf scale=-2:1080","-c:v libx264","-preset veryslow","-b:v 8000k","-y"]}'


def test_a_phase_write_failing_past_the_lease_hands_the_job_back_and_it_completes(
    aws, media, scratch, short_lease
):
    job = new_job(upload(media["clip"], "src/clip.mp4"))
    outage = Rule("dynamodb", "TransactWriteItems", times=10**6, error=SERVER_ERROR,
                  when=has("encoding"))  # fmt: skip
    with injected(outage):
        first = deliver_once()
    assert first[0]["failed"]  # "encoding" could not be recorded: the message stays
    assert outage.failed > 4  # botocore's retries, then ours while the lease held
    stored = Job.get(job.id)
    assert stored.status == "probing" and encode_messages() == 1
    assert not any(scratch.iterdir())
    drive(job)  # redelivered after the delay; the lapsed lease is taken over
    completed_once(job)


def test_a_phase_write_failing_briefly_is_retried_within_the_lease(aws, media, scratch):
    job = new_job(upload(media["clip"], "src/clip.mp4"))
    phase = Rule("dynamodb", "TransactWriteItems", times=12, error=SERVER_ERROR,
                 when=has("encoding"))  # fmt: skip
    with injected(phase):
        deliveries = drive(job)
    assert phase.failed == 12  # three whole calls, each through botocore's retries
    assert [d["failed"] for d in deliveries] == [False]
    completed_once(job)


def test_a_throttled_completion_is_retried_and_recorded_once(aws, media, scratch):
    job = new_job(upload(media["clip"], "src/clip.mp4"))
    done = Rule("dynamodb", "TransactWriteItems", times=4, error=THROTTLED, when=has("completed"))
    with injected(done):
        deliveries = drive(job)
    assert done.failed == 4
    assert [d["failed"] for d in deliveries] == [False]
    completed_once(job)


def test_cancelling_one_of_two_jobs_with_one_dest_while_it_uploads_leaves_the_other_intact(
    aws, media, scratch
):
    first = new_job(upload(media["clip"], "src/clip.mp4"))
    drive(first)
    kept = Job.get(first.id).outputs[0]
    second = new_job(upload(media["long"], "src/long.mp4"))
    s3 = boto3.client("s3")
    before = s3.get_object(Bucket=settings().output_bucket, Key=kept["key"])["Body"].read()

    def cancel_on_upload(request, **_kwargs):
        # The second job's first byte reaches S3: cancel it right then (the upload goes on).
        if request.headers.get("x-amz-meta-openencoder-job") == str(second.id).encode():
            jobs.cancel_job(second.id)

    events = storage.s3().meta.events
    events.register_first("before-send.s3.PutObject", cancel_on_upload, unique_id="cancel")
    events.register_first("before-send.s3.CreateMultipartUpload", cancel_on_upload,
                          unique_id="cancel-mp")  # fmt: skip
    try:
        deliveries = drive(second)
    finally:
        events.unregister("before-send.s3.PutObject", unique_id="cancel")
        events.unregister("before-send.s3.CreateMultipartUpload", unique_id="cancel-mp")
    assert deliveries and Job.get(second.id).status == "cancelled"
    head = s3.head_object(Bucket=settings().output_bucket, Key=kept["key"])
    assert head["Metadata"]["openencoder-job"] == str(first.id)
    assert head["ContentLength"] == kept["size"]
    assert s3.get_object(Bucket=settings().output_bucket, Key=kept["key"])["Body"].read() == before
    versions = s3.list_object_versions(Bucket=settings().output_bucket, Prefix=kept["key"])
    assert len(versions.get("Versions", [])) == 1  # the cancelled job's version is gone
    assert Job.get(first.id).status == "completed"


def test_a_waiting_job_whose_message_was_lost_is_sent_again_by_the_reconcile(aws, media, scratch):
    job = new_job(upload(media["clip"], "src/clip.mp4"))
    queues.sqs().purge_queue(QueueUrl=queues.queue_url("encode"))  # the message is lost
    assert encode_messages() == 0
    assert reconcile.resend_waiting(seconds=3600) == []  # not yet past the bound
    assert reconcile.resend_waiting(seconds=-5) == [int(job.id)]
    url = queues.queue_url("encode")
    got = queues.sqs().receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [{"job_id": int(job.id), "attempt": 1}]
    drive(job)
    completed_once(job)
    assert reconcile.resend_waiting(seconds=-5) == []  # running or done jobs are left alone


def test_outputs_never_land_under_the_watch_or_internal_prefix(aws, media, scratch):
    for key in ("incoming/x.mp4", "_openencoder/worker.tar.gz"):
        bucket = settings().input_bucket
        with pytest.raises(storage.OutsideBoundary):
            storage.check_output(storage.S3Location(bucket, key))
    with pytest.raises(Exception, match="internal"):
        new_job("s3:///src/clip.mp4", dest="s3:///_openencoder/work/")
