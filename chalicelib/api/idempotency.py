"""Idempotency-Key: a retried POST returns the first answer and creates nothing.

Built on Powertools' idempotency utility (`idempotent_function` over a
`DynamoDBPersistenceLayer` on the stage's `idempotency` table, TTL on `expiration`):
- the record's key hashes (user, route, key), so keys are scoped to the user and route;
- the request body is the validated payload: the same key with another body is a 422;
- the first request holds the key as INPROGRESS until it answers, for at most what is
  left of its invocation (API Gateway's 29 s), so a crashed one frees it. A duplicate
  that arrives meanwhile waits for the first answer (polled, bounded) and returns it,
  or gets a 409 with Retry-After if it takes longer;
- an error answer is not kept (Powertools removes the record): a retry runs again.
Powertools is imported on the first request that sends the header, never at import
time (it costs about 100 ms of cold start).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.config import settings
from chalicelib.errors import Conflict, InvalidInput, Unprocessable
from chalicelib.store import faults

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
TTL_SECONDS = 24 * 3600
WAIT_SECONDS = 10.0  # a duplicate waits this long for the first request's answer
API_BUDGET_MS = 29_000  # API Gateway ends every request by then
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as HTTP header values allow


def check_key(value: str) -> str:
    if not _KEY.match(value):
        raise InvalidInput(
            f"{HEADER} must be 1 to 255 visible ASCII characters (a UUID is a good choice)"
        )
    return value


class _Budget:
    """The invocation's remaining time, capped at API Gateway's; Powertools reads it."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def get_remaining_time_in_millis(self) -> int:
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        return min(int(remaining()) if remaining else API_BUDGET_MS, API_BUDGET_MS)


@functools.cache
def _store(route: str) -> Any:
    """One persistence layer per route: Powertools keeps per-function state on it."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    client = boto3.client("dynamodb", region_name=settings().region)
    return DynamoDBPersistenceLayer(table_name=settings().table("idempotency"), boto3_client=client)


def _body_of(request: Any) -> Any:
    raw = request.raw_body or b""
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {"raw": raw.decode("utf-8", "replace")}  # the controller refuses it: not kept


def _record(answer: Any) -> dict[str, Any]:
    if isinstance(answer, Response):
        return {"status_code": answer.status_code, "body": answer.body}
    return {"status_code": 200, "body": answer}


def _response(record: dict[str, Any], replayed: bool) -> Response:
    headers = {"Content-Type": "application/json"}
    if replayed:
        headers[REPLAYED] = "true"
    return Response(body=record["body"], status_code=int(record["status_code"]), headers=headers)


def once(route: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a controller (under `endpoint`) so an Idempotency-Key makes it run once per key."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def handler(request: Any, *args: Any, principal: Any, **kwargs: Any) -> Any:
            key = (request.headers or {}).get(HEADER.lower())
            if key is None:
                return func(request, *args, principal=principal, **kwargs)
            payload = {
                "user": principal.username,
                "route": route,
                "key": check_key(key),
                "body": _body_of(request),
            }
            run = functools.partial(func, request, *args, principal=principal, **kwargs)
            return _run(route, payload, request, run)

        return handler

    return wrap


def _run(route: str, payload: dict[str, Any], request: Any, call: Callable[[], Any]) -> Response:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyInconsistentStateError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="[user, route, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=TTL_SECONDS,
        hash_function="sha256",
        raise_on_no_idempotency_key=True,
        response_hook=lambda answer, _record: {**answer, "replayed": True},
    )
    budget = _Budget(getattr(request, "lambda_context", None))
    config.register_lambda_context(budget)

    @idempotent_function(
        data_keyword_argument="payload", persistence_store=_store(route), config=config,
        key_prefix=route,
    )  # fmt: skip
    def first(payload: dict[str, Any]) -> dict[str, Any]:
        return _record(call())

    deadline = time.monotonic() + min(WAIT_SECONDS, budget.get_remaining_time_in_millis() / 2000)
    pause = 0.05
    while True:
        try:
            answer = first(payload=payload)
            return _response(answer, replayed=bool(answer.pop("replayed", False)))
        except IdempotencyValidationError:
            raise Unprocessable(
                f"this {HEADER} was already used with a different request body: send the same "
                "body to get the first answer, or use a new key for a new request"
            ) from None
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError):
            if time.monotonic() + pause > deadline:
                raise Conflict(
                    f"a request with this {HEADER} is still in progress: retry shortly with "
                    "the same key to get its answer",
                    headers={"Retry-After": "1"},
                ) from None
            time.sleep(pause)  # the first request is running: its answer comes soon
            pause = min(pause * 2, 0.5)
        except IdempotencyPersistenceLayerError as exc:
            # DynamoDB failed or was unreachable: `endpoint` answers 503 for the AWS error.
            cause = next((a for a in exc.args if isinstance(a, Exception)), None)
            if cause is not None and faults.is_backend_error(cause):
                raise cause from None
            raise
