"""The webhooks function: fan job events out to endpoints and deliver them, with retries.

Runs on its own SQS queue, never in a request or an encode. Two kinds of message:
- `event` (from chalicelib.jobs.events): build the payload once, then queue one
  `delivery` per endpoint that wants it;
- `delivery`: one signed POST. A failure is re-sent to the queue with an
  exponential delay (SQS delays are at most 15 min, so longer waits hop until
  due); after the last attempt the message goes to the dead-letter queue.
Every attempt is recorded (status code, latency, next try) for /deliveries.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from chalicelib.config import settings
from chalicelib.delivery import outbound, webhooks
from chalicelib.errors import OpenEncoderError
from chalicelib.store.models import Delivery, Job, Webhook, rfc3339

log = logging.getLogger("openencoder.webhooks")

MAX_DELAY_SECONDS = 10 * 3600
SQS_MAX_DELAY = 900
MAX_OUTPUTS_IN_PAYLOAD = 20  # an SQS message holds 256 KB; the rest is at /outputs
KEEP_RECORDS = timedelta(days=14)
USER_AGENT = "OpenEncoder-Webhooks/1"


# --- queue ----------------------------------------------------------------------


@cache
def _url(name: str) -> str:
    from chalicelib.store.queues import sqs

    return sqs().get_queue_url(QueueName=name)["QueueUrl"]


def _send(body: dict[str, Any], delay: float = 0, *, dead: bool = False) -> None:
    from chalicelib.store.queues import sqs

    name = settings().webhook_queue + ("-dlq" if dead else "")
    seconds = min(SQS_MAX_DELAY, max(0, math.ceil(delay)))
    sqs().send_message(QueueUrl=_url(name), MessageBody=json.dumps(body), DelaySeconds=seconds)


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt `attempt` (1-based): base x 4^(attempt-1), at most 10 h."""
    return min(MAX_DELAY_SECONDS, settings().webhook_backoff_seconds * 4 ** (attempt - 1))


def queue_test(hook: Webhook) -> str:
    """Queue a ping to one endpoint; returns its message id."""
    msg_id = _msg_id()
    payload = {"webhook_id": hook.id, "message": "a test delivery from Open Encoder"}
    _send(_delivery(hook.id, msg_id, webhooks.TEST_EVENT, payload, time.time()))
    return msg_id


def _msg_id() -> str:
    from chalicelib.store.ids import new_guid

    return "msg_" + new_guid()


def _delivery(hook_id: str, msg_id: str, event: str, data: dict, at: float) -> dict[str, Any]:
    return {"kind": "delivery", "webhook_id": hook_id, "msg_id": msg_id, "event": event,
            "data": data, "at": at, "attempt": 1, "due": 0}  # fmt: skip


# --- fan-out --------------------------------------------------------------------


def job_payload(job: Job, event: str, message: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.jobs import records as jobs

    if event == "job.progress":
        view = jobs.summary_view(job)
        view["progress"] = message.get("progress", view["progress"])
        return view
    view = jobs.public_view(job)  # outputs carry their download links
    outputs = view.get("outputs") or []
    if len(outputs) > MAX_OUTPUTS_IN_PAYLOAD:
        view["outputs"] = outputs[:MAX_OUTPUTS_IN_PAYLOAD]
        view["outputs_truncated"] = True
    view["outputs_count"] = len(outputs)
    view.pop("probe", None)
    return view


def fan_out(message: dict[str, Any]) -> int:
    """Queue one delivery per endpoint that wants this event; returns how many."""
    event, job_id = message["event"], int(message["job_id"])
    try:
        job = Job.get(job_id, consistent_read=True)
    except Job.DoesNotExist:
        log.warning("event %s for a job %s that does not exist", event, job_id)
        return 0
    targets = {hook.id: hook for hook in webhooks.subscribed(event)}
    slack = webhooks.settings_slack()
    if slack is not None and event in slack.events:
        targets[slack.id] = slack
    if job.notify_webhook and event in webhooks.DEFAULT_EVENTS:
        try:
            hook = Webhook.get(job.notify_webhook)
            if hook.active:
                targets[hook.id] = hook
        except Webhook.DoesNotExist:
            pass
    if not targets:
        return 0
    data = job_payload(job, event, message)
    msg_id = _msg_id()  # one id per event: receivers de-duplicate retries by it
    for hook_id in targets:
        _send(_delivery(hook_id, msg_id, event, data, float(message.get("at") or time.time())))
    return len(targets)


# --- one delivery -----------------------------------------------------------------


def _slack_text(event: str, data: dict[str, Any]) -> str:
    if event == webhooks.TEST_EVENT:
        return "Open Encoder: test message"
    job = f"job {data.get('id')} ({data.get('preset')})"
    if event == "job.completed":
        links = ", ".join(f"<{o['url']}|{o['key'].rsplit('/', 1)[-1]}>"
                          for o in data.get("outputs", []) if o.get("url"))  # fmt: skip
        return f":white_check_mark: Open Encoder {job} completed. {links}".strip()
    if event == "job.failed":
        error = (data.get("error") or {}).get("message", "")
        return f":x: Open Encoder {job} failed: {error}"
    if event == "job.cancelled":
        return f":no_entry_sign: Open Encoder {job} was cancelled"
    return f"Open Encoder {job}: {data.get('progress', 0)}%"


def request_for(hook: Webhook, message: dict[str, Any], now: int) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one attempt, in the endpoint's format."""
    event, data = message["event"], message["data"]
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if hook.format == "slack":
        return json.dumps({"text": _slack_text(event, data)}).encode(), headers
    at = datetime.fromtimestamp(float(message["at"]), UTC).replace(microsecond=0)
    body = json.dumps({"type": event, "timestamp": rfc3339(at), "data": data}).encode()
    headers.update(
        {
            "webhook-id": message["msg_id"],
            "webhook-timestamp": str(now),
            "webhook-signature": webhooks.sign(hook.secret, message["msg_id"], now, body),
        }
    )
    return body, headers


def deliver(message: dict[str, Any]) -> str:
    """Make one attempt (or wait on until due); returns what happened."""
    now = time.time()
    if float(message.get("due") or 0) > now:
        _send(message, float(message["due"]) - now)
        return "waiting"
    hook = webhooks.lookup(message["webhook_id"])
    if hook is None:
        return "dropped: the webhook was deleted"
    if not hook.active and message["event"] != webhooks.TEST_EVENT:
        return "dropped: the webhook is inactive"
    attempt = int(message["attempt"])
    body, headers = request_for(hook, message, int(now))
    status, latency, error = None, None, None
    try:
        answer = outbound.post(hook.url, body, headers, settings().webhook_timeout_seconds)
        status, latency = answer.status, answer.latency_ms
        if 300 <= status < 400:
            error = "redirect not followed: register the final URL"
        elif not 200 <= status < 300:
            error = f"answered {status}"
    except OpenEncoderError as exc:  # refused by the SSRF guard
        error = exc.message
    except Exception as exc:  # noqa: BLE001 - any network failure is a failed attempt
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    ok = error is None
    final = not ok and attempt >= settings().webhook_max_attempts
    next_due = None if ok or final else now + backoff_seconds(attempt)
    _record(message, now, attempt, status, latency, error, next_due)
    if next_due is not None:
        _send({**message, "attempt": attempt + 1, "due": next_due}, next_due - now)
    elif final:
        _send({**message, "error": error}, dead=True)
    log.info("webhook %s %s attempt %s: %s", hook.id, message["event"], attempt, error or "ok",
             extra={"webhook_id": hook.id, "event": message["event"], "attempt": attempt,
                    "status_code": status})  # fmt: skip
    return "delivered" if ok else ("dead-lettered" if final else "retrying")


def _record(message: dict, started: float, attempt: int, status: int | None,
            latency: int | None, error: str | None, next_due: float | None) -> None:  # fmt: skip
    created = datetime.fromtimestamp(started, UTC)  # when the attempt began
    Delivery(
        message["webhook_id"],
        f"{rfc3339(created)}#{message['msg_id']}#{attempt:03d}",
        id=message["msg_id"],
        event=message["event"],
        attempt=attempt,
        status_code=status,
        error=error,
        latency_ms=latency,
        next_try=datetime.fromtimestamp(next_due, UTC) if next_due else None,
        created=created,
        expires=created + KEEP_RECORDS,
    ).save()


# --- the function ---------------------------------------------------------------


def process(body: str) -> str:
    message = json.loads(body)
    if message.get("kind") == "event":
        return f"fanned out to {fan_out(message)}"
    if message.get("kind") == "delivery":
        return deliver(message)
    log.error("dropping a malformed webhook message: %r", body[:200])
    return "dropped"


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry for the webhooks queue; only records that raised are redelivered."""
    failures = []
    for record in event.get("Records", []):
        try:
            process(record["body"])
        except Exception:
            log.exception("webhook message %s failed; SQS will redeliver it", record["messageId"])
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
