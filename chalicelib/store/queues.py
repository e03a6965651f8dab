"""The SQS queues that carry "job N, attempt K is ready" to the encoders."""

from __future__ import annotations

from functools import cache
from typing import Any

from chalicelib.config import settings
from chalicelib.store import messages

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds and a visibility change we use


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs", region_name=settings().region)


@cache
def queue_url(kind: str) -> str:
    s = settings()
    name = {"encode": s.encode_queue, "long": s.long_queue}[kind]
    return sqs().get_queue_url(QueueName=name)["QueueUrl"]


def send(kind: str, message: messages.Message, delay_seconds: int = 0) -> None:
    sqs().send_message(
        QueueUrl=queue_url(kind),
        MessageBody=messages.dump(message),
        DelaySeconds=min(MAX_DELAY_SECONDS, max(0, int(delay_seconds))),
    )


def send_many(kind: str, batch: list[messages.Message]) -> None:
    """Several messages, ten per call (SQS's batch limit); any message not sent raises."""
    for start in range(0, len(batch), 10):
        entries = [
            {"Id": str(i), "MessageBody": messages.dump(m)}
            for i, m in enumerate(batch[start : start + 10])
        ]
        answer = sqs().send_message_batch(QueueUrl=queue_url(kind), Entries=entries)
        if answer.get("Failed"):
            from botocore.exceptions import ClientError

            failed = answer["Failed"][0]
            # A batch answers 200 with failures inside: raise them as the call's own error,
            # so `faults` tells a throttled entry (retry) from a refused one.
            status = 400 if failed.get("SenderFault") else 500
            error = {
                "Code": failed.get("Code", "BatchEntryFailed"),
                "Message": failed.get("Message", ""),
            }
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendMessageBatch"
            )


def send_job(kind: str, job_id: int, attempt: int, delay_seconds: int = 0) -> None:
    send(kind, messages.JobMessage(job_id=job_id, attempt=attempt), delay_seconds)


def hand_back(kind: str, receipt_handle: str, delay_seconds: int) -> None:
    """Leave a received message on its queue, visible again after `delay_seconds`."""
    sqs().change_message_visibility(
        QueueUrl=queue_url(kind),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=min(MAX_DELAY_SECONDS, max(0, int(delay_seconds))),
    )
