"""The encode function's SQS batch: run each job, report only the records that failed."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from chalicelib import host, queues
from chalicelib.pipeline import Outcome, run_message

log = logging.getLogger("openencoder.encode")
# Time kept back from the Lambda budget to hand a job off or fail it cleanly.
BUDGET_MARGIN_SECONDS = 60


class Released(Exception):
    """The host is stopping and handed the job back: the record must be redelivered."""


def process(
    record_body: str,
    *,
    worker_id: str,
    queue: str,
    deadline: float | None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run one message; a transient failure is re-queued with a delay, not redelivered at once."""
    outcome = run_message(record_body, worker_id=worker_id, deadline=deadline, stop=stop)
    log.info("job %s: %s %s", outcome.job_id, outcome.result, outcome.message)
    if outcome.result == "retry":
        attempt = int(json.loads(record_body)["attempt"])
        queues.send_job(queue, outcome.job_id, attempt, delay_seconds=outcome.retry_delay)
    return outcome


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry for the encode queue, with SQS partial batch responses."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    remaining = context.get_remaining_time_in_millis() / 1000 if context else 900
    deadline = time.monotonic() + remaining - BUDGET_MARGIN_SECONDS
    request = getattr(context, "aws_request_id", "local")

    def record_handler(record: Any) -> None:
        outcome = process(record.body, worker_id=f"lambda:{request}", queue="encode",
                          deadline=deadline, stop=host.stopping)  # fmt: skip
        if outcome.result == "released":
            # The host is stopping and gave the job back: keep the message for redelivery.
            raise Released(f"job {outcome.job_id} released: the host is stopping")

    return process_partial_response(
        event=event,
        record_handler=record_handler,
        # A batch that failed entirely is reported like any other (SQS redelivers those
        # records); raising would make a host stopping look like a crash.
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )
