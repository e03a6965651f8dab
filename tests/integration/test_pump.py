"""The event pump and the encode batch: concurrent invocations, messages they can't read."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from chalice import Chalice

from ops.pump import EventPump
from tests.polling import wait_until


def test_up_to_the_concurrency_limit_of_invocations_run_at_once(aws):
    app = Chalice(app_name="pumptest", configure_logs=False)
    queue = boto3.client("sqs").create_queue(QueueName="pumptest-work")["QueueUrl"]
    lock = threading.Lock()
    state = {"running": 0, "most": 0, "done": 0}
    # Each invocation waits until another one runs beside it: one at a time would time out.
    together = threading.Barrier(2, timeout=20)

    @app.on_sqs_message(queue="pumptest-work", batch_size=1, name="work")
    def work(event):
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        together.wait()
        with lock:
            state["running"] -= 1
            state["done"] += 1

    for n in range(4):
        boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps({"n": n}))
    pump = EventPump(app, region="us-east-1", stage="t", concurrency=2)
    pump.start()
    try:
        wait_until(lambda: state["done"] == 4, 60, "four invocations, two at a time")
    finally:
        pump.stop(timeout=5)
    assert state["most"] == 2


def test_an_unreadable_notification_is_skipped_and_the_rest_delivered(aws):
    app = Chalice(app_name="pumptest", configure_logs=False)
    seen = []

    @app.on_s3_event(bucket="openencoder-local-input", prefix="incoming/", name="drops")
    def drops(event):
        seen.append(event.key)

    pump = EventPump(app, region="us-east-1", stage="t", concurrency=1)
    pump.start()
    try:
        sqs = boto3.client("sqs")
        url = sqs.get_queue_url(QueueName="openencoder-t-s3-drops")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="{not json")
        boto3.client("s3").put_object(Bucket="openencoder-local-input", Key="incoming/a.mp4",
                                      Body=b"x")  # fmt: skip
        wait_until(lambda: seen == ["incoming/a.mp4"], 30, "the drop behind the bad message")

        def left() -> int:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            counts = attributes["Attributes"]
            return int(counts["ApproximateNumberOfMessages"]) + int(
                counts["ApproximateNumberOfMessagesNotVisible"]
            )

        wait_until(lambda: left() == 0, 10, "the unreadable message to be deleted, not retried")
    finally:
        pump.stop(timeout=5)


@pytest.mark.slow
def test_an_unreadable_job_message_is_dropped_and_the_rest_of_the_batch_runs(aws, media, scratch):
    from chalicelib.config import settings
    from chalicelib.graph import encode_queue
    from chalicelib.jobs import records as jobs
    from tests.conftest import ADMIN
    from tests.integration.test_logs import lambda_context, sqs_event

    boto3.client("s3").upload_file(str(media["clip"]), settings().input_bucket, "src/b.mp4")
    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                          source="s3:///src/b.mp4", dest="s3:///out/b/")  # fmt: skip
    event = sqs_event("{half a message")
    event["Records"] += sqs_event(json.dumps({"job_id": int(job.id), "attempt": 1}))["Records"]
    answer = encode_queue.handle_batch(event, lambda_context("encode"))
    assert answer == {"batchItemFailures": []}  # the bad one is not retried forever either
    assert jobs.get_job(str(job.id)).status == "completed"
