"""The SQS queues that carry "job N, attempt K is ready" to the encoders."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalicelib.config import settings


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs", region_name=settings().region)


@cache
def queue_url(kind: str) -> str:
    s = settings()
    name = {"encode": s.encode_queue, "long": s.long_queue}[kind]
    return sqs().get_queue_url(QueueName=name)["QueueUrl"]


def job_message(job_id: int, attempt: int) -> str:
    return json.dumps({"job_id": job_id, "attempt": attempt})


def send_job(kind: str, job_id: int, attempt: int, delay_seconds: int = 0) -> None:
    sqs().send_message(
        QueueUrl=queue_url(kind),
        MessageBody=job_message(job_id, attempt),
        DelaySeconds=min(900, max(0, delay_seconds)),
    )
