"""Fault injection at the AWS protocol level: chosen requests answered with an error.

A `before-send` handler on a botocore client answers a matching request with an HTTP
error response instead of sending it, so botocore parses it, applies its own retries
(each retry passes through the handler again) and raises what it would raise against
AWS. Nothing in chalicelib is patched.

botocore runs every before-send handler, including moto's in-process one, and takes
the first answer; so a failed request is pointed at an address moto ignores while the
other handlers run, then restored (botocore reuses the request for its retries), so
the failed request changes nothing, as a 5xx or throttle from AWS would not.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

THROTTLED = ("ProvisionedThroughputExceededException", 400)
SERVER_ERROR = ("InternalServerError", 500)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self.body


@dataclass
class Rule:
    service: str
    operation: str
    times: int  # how many requests to fail (botocore's retries count, one each)
    error: tuple[str, int] = THROTTLED
    when: Callable[[str], bool] = lambda _body: True
    after: int = 0  # let this many matching requests through first
    seen: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: str) -> bool:
        if not self.when(body):
            return False
        with self.lock:
            self.seen += 1
            if self.seen <= self.after or self.failed >= self.times:
                return False
            self.failed += 1
            return True


def _response(service: str, request: Any, error: tuple[str, int]) -> AWSResponse:
    code, status = error
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    elif service == "sqs":
        body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": "injected"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    else:
        prefix = "com.amazonaws.dynamodb.v20120810#"
        body = json.dumps({"__type": prefix + code, "message": "injected"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, status, headers, _Raw(body))


def _clients() -> list[tuple[str, Any]]:
    """Every botocore client chalicelib uses (PynamoDB's per model, boto3's cached ones)."""
    from chalicelib.store import models, queues, storage

    clients = [("dynamodb", m._get_connection().connection.client) for m in models.ALL_MODELS]
    clients.append(("dynamodb", models.connection().client))
    clients.append(("s3", storage.s3()))
    clients.append(("sqs", queues.sqs()))
    return clients


@contextmanager
def injected(*rules: Rule) -> Iterator[list[Rule]]:
    """Fail the requests `rules` describe while inside the block."""

    def handler(request: Any, event_name: str, **_kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        for rule in rules:
            if rule.service == service and rule.operation == operation and rule.take(body):
                answer = _response(service, request, rule.error)
                request.original_url, request.url = request.url, "http://injected.invalid/"
                return answer
        return None

    def restore(request: Any, **_kwargs: Any) -> None:
        original = getattr(request, "original_url", None)
        if original is not None:
            request.url = original
            del request.original_url

    registered = []
    seen_ids = set()
    for service, client in _clients():
        if id(client) in seen_ids:
            continue
        seen_ids.add(id(client))
        for rule in {(r.service, r.operation) for r in rules}:
            if rule[0] == service:
                name = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{rule[1]}"
                client.meta.events.register_first(name, handler, unique_id=f"inject-{name}")
                # On the plain event, after moto's handler (specific events' handlers run first).
                client.meta.events.register_last("before-send", restore, unique_id="restore")
                registered.append((client, name))
    try:
        yield list(rules)
    finally:
        for client, name in registered:
            client.meta.events.unregister(name, unique_id=f"inject-{name}")
            client.meta.events.unregister("before-send", unique_id="restore")
