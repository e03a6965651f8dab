"""The long-encode worker: `python -m chalicelib.fleet.worker` drains the long queue.

It runs the same pipeline as the encode Lambda, keeps the message invisible
while it works, and on SIGTERM stops taking work and gives its job back.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from chalicelib.fleet import heartbeats
from chalicelib.graph.encode_queue import process
from chalicelib.store import queues

log = logging.getLogger("openencoder.worker")
VISIBILITY_SECONDS = 120
EXTEND_EVERY_SECONDS = 40
# An idle worker waits in its receive, and a SIGTERM is answered when the receive returns:
# short long-polls make a stop (a droplet's, the local stack's) take a second, not five.
RECEIVE_WAIT_SECONDS = 1
IDLE_BEAT_SECONDS = 5  # an idle worker's heartbeat (a read and a write), not one per poll


class Worker:
    def __init__(self, queue: str = "long", worker_id: str | None = None) -> None:
        self.queue = queue
        self.worker_id = worker_id or f"worker:{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.completed = 0

    def beat(self, state: str, job_id: int | None = None) -> None:
        try:
            heartbeats.beat(self.worker_id, state, job_id)
        except Exception:
            log.warning("heartbeat failed", exc_info=True)

    def _extend(self, url: str, receipt: str, done: threading.Event, job_id: int | None) -> None:
        while not done.wait(EXTEND_EVERY_SECONDS):
            self.beat("busy", job_id)
            try:
                queues.sqs().change_message_visibility(
                    QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=VISIBILITY_SECONDS
                )
            except Exception:
                log.warning("could not extend message visibility", exc_info=True)

    def run_once(self, wait_seconds: int = RECEIVE_WAIT_SECONDS) -> int:
        url = queues.queue_url(self.queue)
        answer = queues.sqs().receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=VISIBILITY_SECONDS,
        )  # fmt: skip
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        for message in messages:
            job_id = _job_id(message["Body"])
            self.beat("busy", job_id)
            done = threading.Event()
            extender = threading.Thread(
                target=self._extend, args=(url, message["ReceiptHandle"], done, job_id), daemon=True
            )
            extender.start()
            try:
                outcome = process(message["Body"], worker_id=self.worker_id, queue=self.queue,
                                  deadline=None, stop=self.stopping)  # fmt: skip
            finally:
                done.set()
            if outcome.delete_message:
                queues.sqs().delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                self.completed += 1
            else:
                # Not recorded, or the host is stopping: the message stays, seen again after
                # the outcome's delay (at once when released).
                queues.sqs().change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=outcome.delay,
                )  # fmt: skip
        return len(messages)

    def serve(self) -> None:
        log.info("worker %s draining the %s queue", self.worker_id, self.queue)
        next_beat = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_beat:
                    self.beat("idle")
                    next_beat = time.monotonic() + IDLE_BEAT_SECONDS
                if self.run_once():
                    next_beat = 0.0  # back to idle: say so at once
            except Exception:
                log.exception("worker loop failed")
                self.stopping.wait(5)
        self.beat("stopping")


def _job_id(body: str) -> int | None:
    try:
        return int(json.loads(body)["job_id"])
    except (ValueError, KeyError, TypeError):
        return None


def main() -> int:
    from chalicelib import logs

    logs.configure()
    worker = Worker(queue=os.environ.get("OE_WORKER_QUEUE", "long"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stopping.set())
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
