"""The local stack's event pump: what Lambda's event sources do in AWS.

It reads the event sources registered on the Chalice app object (no list kept
by hand) and delivers SQS messages, S3 notifications and schedule ticks to the
app's own handlers, over real SQS calls against the local AWS endpoint.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
from chalice.app import S3EventConfig, ScheduledEventConfig, SQSEventConfig
from chalice.local import LambdaContext

from chalicelib.config import graph_settings

log = logging.getLogger("openencoder.pump")
_UNIT_SECONDS = {
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}
FAILURE_BACKOFF_SECONDS = 5


def schedule_seconds(expression: Any) -> int:
    """Seconds between ticks of a Chalice schedule (Rate object or rate()/cron() string)."""
    if hasattr(expression, "value") and hasattr(expression, "unit"):
        return int(expression.value) * _UNIT_SECONDS[str(expression.unit).lower()]
    match = re.match(r"rate\((\d+)\s+(\w+)\)", str(expression))
    if match:
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    return 60  # cron(...): a minute is the finest grain cron has


class EventPump:
    """Polls each event source and runs up to `concurrency` invocations of its handler at once.

    Lambda runs one invocation per batch and scales a function out while its queue
    has messages; locally each source gets a poller and at most `concurrency`
    invocations in flight, so a job split into chunks really encodes in parallel.
    """

    def __init__(
        self,
        app: Any,
        *,
        region: str,
        stage: str,
        schedule_override: int | None = None,
        wait_seconds: int = 1,
        concurrency: int = 1,
    ) -> None:
        self.app = app
        self.stage = stage
        self.sqs = boto3.client("sqs", region_name=region)
        self.s3 = boto3.client("s3", region_name=region)
        self.schedule_override = schedule_override
        self.wait_seconds = wait_seconds
        self.concurrency = max(1, concurrency)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.invocations: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self.delivered = 0

    # --- wiring --------------------------------------------------------------

    def start(self) -> None:
        s3_by_bucket: dict[str, list[tuple[S3EventConfig, str]]] = {}
        for source in self.app.event_sources:
            handler = self.app.handler_map[source.name]
            if isinstance(source, SQSEventConfig):
                url = self.sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
                self._spawn(self._sqs_loop, source.name, url, source.batch_size, handler, False)
            elif isinstance(source, S3EventConfig):
                url = self._s3_queue(source)
                s3_by_bucket.setdefault(source.bucket, []).append((source, url))
                self._spawn(self._sqs_loop, source.name, url, 1, handler, True)
            elif isinstance(source, ScheduledEventConfig):
                every = self.schedule_override or schedule_seconds(source.schedule_expression)
                self._spawn(self._schedule_loop, source.name, every, handler)
        for bucket, pairs in s3_by_bucket.items():
            self._notify(bucket, pairs)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"pump-{args[0]}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _s3_queue(self, source: S3EventConfig) -> str:
        # S3 notifies Lambda directly in AWS; locally it notifies this queue,
        # which the pump drains into the same handler.
        name = f"openencoder-{self.stage}-s3-{source.name}"[:80]
        return self.sqs.create_queue(QueueName=name)["QueueUrl"]

    def _notify(self, bucket: str, pairs: list[tuple[S3EventConfig, str]]) -> None:
        configs = []
        for source, url in pairs:
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            rules = [
                {"Name": kind, "Value": value}
                for kind, value in (("prefix", source.prefix), ("suffix", source.suffix))
                if value
            ]
            config: dict[str, Any] = {
                "QueueArn": arn,
                "Events": source.events or ["s3:ObjectCreated:*"],
            }
            if rules:
                config["Filter"] = {"Key": {"FilterRules": rules}}
            configs.append(config)
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
        )

    def stop(self, timeout: float = 12) -> bool:
        """Stop polling and wait for running handlers; True if all returned in time.

        The host sets `host.stopping` first, which, like a Lambda timeout but gracefully,
        makes the encode handler kill ffmpeg, remove scratch and hand its job back.
        """
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            running = list(self.invocations)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in running if t.is_alive()]
        if left:
            log.warning("handlers still running at stop: %s", ", ".join(left))
        return not left

    # --- loops ---------------------------------------------------------------

    def _sqs_loop(self, name: str, url: str, batch: int, handler: Any, is_s3: bool) -> None:
        slots = threading.BoundedSemaphore(self.concurrency)
        while not self.stopping.is_set():
            # Receive only when an invocation slot is free, as Lambda's poller does.
            if not slots.acquire(timeout=0.5):
                continue
            try:
                messages = self._receive(url, batch)
            except Exception:
                slots.release()
                log.exception("event source %s: receiving failed", name)
                self.stopping.wait(FAILURE_BACKOFF_SECONDS)
                continue
            if not messages:
                slots.release()
                continue
            thread = threading.Thread(
                target=self._invoke,
                args=(slots, name, url, messages, handler, is_s3),
                name=f"invoke-{name}",
                daemon=True,
            )
            with self._lock:
                self.invocations.add(thread)
            thread.start()

    def _receive(self, url: str, batch: int) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(batch, 10),
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
        )
        return answer.get("Messages", [])

    def _invoke(self, slots: threading.BoundedSemaphore, name: str, url: str,
                messages: list[dict[str, Any]], handler: Any, is_s3: bool) -> None:  # fmt: skip
        try:
            if is_s3:
                self._deliver_s3(name, url, messages, handler)
            else:
                self._deliver_sqs(name, url, messages, handler)
        except Exception:
            log.exception("event source %s: delivery failed", name)
        finally:
            slots.release()
            with self._lock:
                self.invocations.discard(threading.current_thread())

    def _deliver_s3(self, name: str, url: str, messages: list[dict], handler: Any) -> None:
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                # One unreadable notification must not block the queue behind it.
                log.error("event source %s: skipping an unparseable message %s: %r", name,
                          message["MessageId"], message["Body"][:200],
                          extra={"message_id": message["MessageId"]})  # fmt: skip
                event = {}
            if isinstance(event, dict) and event.get("Records"):
                handler(event, self._context(name))
                self.delivered += 1
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _deliver_sqs(self, name: str, url: str, messages: list[dict], handler: Any) -> None:
        arn = url.rsplit("/", 1)[-1]
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:local:000000000000:{arn}",
                }
                for m in messages
            ]
        }
        try:
            result = handler(event, self._context(name))
        except Exception:
            log.exception("handler %s raised; the batch will be redelivered", name)
            failed = {m["MessageId"] for m in messages}
        else:
            failures = (
                (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
            )
            failed = {f["itemIdentifier"] for f in failures}
        self.delivered += 1
        for m in messages:
            if m["MessageId"] in failed:
                # Lambda would wait out the visibility timeout; locally a short back-off
                # keeps retries visible without a busy loop, and at stop none at all, so
                # a job handed back is the first thing the next start picks up.
                delay = 0 if self.stopping.is_set() else FAILURE_BACKOFF_SECONDS
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=delay
                )
            else:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def _context(self, name: str) -> LambdaContext:
        # The memory a run here is billed at in its job's cost (OE_MEMORY_MB).
        return LambdaContext(function_name=f"{self.app.app_name}-{self.stage}-{name}",
                             memory_size=graph_settings().memory_mb,
                             max_runtime_ms=900_000)  # fmt: skip

    def _schedule_loop(self, name: str, every: int, handler: Any) -> None:
        while not self.stopping.wait(every):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "000000000000",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": "local",
                "resources": [f"arn:aws:events:local:000000000000:rule/{name}"],
                "detail": {},
            }
            try:
                handler(event, self._context(name))
                self.delivered += 1
            except Exception:
                log.exception("scheduled handler %s failed", name)
