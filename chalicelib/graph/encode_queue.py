"""The encode function's SQS batch: run each job, report only the records that failed.

A message is deleted only when its outcome is recorded on the job: a run that could
not record it (DynamoDB unreachable for longer than the lease) hands the message back
with a delay and reports the record as failed, so SQS delivers it again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from chalicelib import host, logs
from chalicelib.graph.pipeline import JobRun
from chalicelib.graph.run import Outcome, Result, Run
from chalicelib.jobs import cost
from chalicelib.store import faults, messages, queues

log = logging.getLogger("openencoder.encode")
# Time kept back from the Lambda budget to hand a job off or fail it cleanly.
BUDGET_MARGIN_SECONDS = 60


class HandedBack(Exception):
    """Raised for a record whose message must stay on the queue."""


DROPPED = Outcome(0, Result.SKIPPED, "malformed message")


def _parse(body: str) -> messages.Message | None:
    try:
        return messages.parse(body)
    except messages.MalformedMessage as exc:
        log.error("dropping %s", exc)
        return None


def run_message(
    body: str, *, worker_id: str, deadline: float | None = None, stop: threading.Event | None = None
) -> Outcome:
    """Run the job or task a queue message names; a malformed message is dropped as skipped."""
    message = _parse(body)
    if message is None:
        return DROPPED
    return _run(message, worker_id=worker_id, deadline=deadline, stop=stop)


def _run(
    message: messages.Message,
    *,
    worker_id: str,
    deadline: float | None,
    stop: threading.Event | None,
    memory_mb: int | None = None,
) -> Outcome:
    # The runner of graph tasks loads the media steps: only a task's message needs it.
    from chalicelib.graph.runner import TaskRun

    run: Run
    if isinstance(message, messages.TaskMessage):
        run = TaskRun(message, worker_id=worker_id, deadline=deadline, stop=stop)
    else:
        run = JobRun(
            message.job_id, message.attempt, worker_id=worker_id, deadline=deadline, stop=stop
        )
    if memory_mb:  # the function's configured memory: what the run is billed at
        run.memory_mb = memory_mb
    with logs.bind(**run.extra):  # every record of the run names its job, attempt (and task)
        outcome = run.run()
    log.info("outcome %s %s", outcome.result.value, outcome.message, extra=run.extra)
    return outcome


def process(
    record_body: str,
    *,
    worker_id: str,
    queue: str,
    deadline: float | None,
    stop: threading.Event | None = None,
    memory_mb: int | None = None,
) -> Outcome:
    """Run one message; a transient failure is re-queued with a delay, not redelivered at once."""
    message = _parse(record_body)
    if message is None:
        return DROPPED
    outcome = _run(message, worker_id=worker_id, deadline=deadline, stop=stop, memory_mb=memory_mb)
    if outcome.result is Result.RETRY:
        try:
            queues.send(queue, message, delay_seconds=outcome.delay)
        except Exception as exc:  # noqa: BLE001 - the job waits queued: keep this message instead
            log.warning("could not send the retry: %s", faults.describe(exc))
            return Outcome(outcome.job_id, Result.HAND_BACK, outcome.message, delay=outcome.delay)
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
    memory = cost.memory_mb(context)

    def record_handler(record: Any) -> None:
        outcome = process(record.body, worker_id=f"lambda:{request}", queue="encode",
                          deadline=deadline, stop=host.stopping, memory_mb=memory)  # fmt: skip
        if not outcome.delete_message:
            try:
                queues.hand_back("encode", record.receipt_handle, outcome.delay)
            except Exception as exc:  # noqa: BLE001 - the visibility timeout brings it back
                log.warning("could not delay the message: %s", faults.describe(exc))
            raise HandedBack(f"job {outcome.job_id}: {outcome.result.value}")

    return process_partial_response(
        event=event,
        record_handler=record_handler,
        # A batch that failed entirely is reported like any other (SQS redelivers those
        # records); raising would make a host stopping look like a crash.
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )
