"""What a failed AWS call means: lost (a condition failed), transient, or permanent.

PynamoDB raises one exception per operation (`UpdateError`, `PutError`, ...) whether a
condition failed or the table throttled, answered 5xx or dropped the connection; boto3
raises `ClientError` or `BotoCoreError`. `classify` reads the cause so callers can tell
"someone else owns this job" (stop quietly) from "try again" (retry with back-off) from
"this will never work" (fail at once with a message a person can act on).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

log = logging.getLogger("openencoder.faults")
T = TypeVar("T")


class Fault(Enum):
    LOST = "lost"  # a conditional write's condition failed: another writer owns the item
    TRANSIENT = "transient"  # throttling, 5xx, timeouts, connections: worth another try
    PERMANENT = "permanent"  # missing bucket, no access, bad request: retrying won't help


class StillFailing(Exception):
    """A transient failure outlasted the time it was allowed to be retried for."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {describe(cause)}")
        self.what = what
        self.cause = cause


# Error codes AWS answers for load, conflicts and its own faults (botocore retries most
# of them itself; by the time one reaches us its retries are spent).
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionConflictException",
        "TransactionInProgressException",
        "TransactionConflict",
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
LOST_CODES = frozenset({"ConditionalCheckFailedException", "ConditionalCheckFailed"})


def _client_error(exc: BaseException) -> Any:
    """The botocore ClientError (or BotoCoreError) behind `exc`, if any."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, (ClientError, BotoCoreError)):
            return current
        # PynamoDB keeps it in .cause; boto3's S3UploadFailedError only as the context.
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
        seen += 1
    return None


def error_code(exc: BaseException) -> str:
    """The AWS error code of `exc` ('' when it has none)."""
    from botocore.exceptions import ClientError

    cause = _client_error(exc)
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""


def _cancellation_codes(exc: BaseException) -> list[str]:
    reasons = getattr(exc, "cancellation_reasons", None)
    if reasons is None:
        reasons = getattr(getattr(exc, "cause", None), "cancellation_reasons", None) or []
    return [r.code for r in reasons if r is not None]


def classify(exc: BaseException) -> Fault:
    """Lost, transient or permanent; anything that is not an AWS failure is permanent."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
    )

    if isinstance(exc, StillFailing):
        return Fault.TRANSIENT
    code = error_code(exc)
    if code == "TransactionCanceledException":
        reasons = _cancellation_codes(exc)
        if any(r in LOST_CODES for r in reasons):
            return Fault.LOST
        if any(r in TRANSIENT_CODES for r in reasons):
            return Fault.TRANSIENT
        return Fault.PERMANENT
    if code in LOST_CODES:
        return Fault.LOST
    if code in TRANSIENT_CODES:
        return Fault.TRANSIENT
    cause = _client_error(exc)
    if isinstance(cause, ClientError):
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return Fault.TRANSIENT if status >= 500 or status == 429 else Fault.PERMANENT
    if isinstance(cause, NoCredentialsError):
        return Fault.PERMANENT
    if isinstance(cause, (ConnectionError, HTTPClientError)):
        return Fault.TRANSIENT  # connection refused or reset, read and connect timeouts
    if isinstance(exc, (TimeoutError, ConnectionResetError, ConnectionRefusedError)):
        return Fault.TRANSIENT
    return Fault.PERMANENT


def is_lost(exc: BaseException) -> bool:
    return classify(exc) is Fault.LOST


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is Fault.TRANSIENT


def is_backend_error(exc: BaseException) -> bool:
    """A failure of AWS or of the way to it (as opposed to a bug in this code)."""
    from pynamodb.exceptions import PynamoDBException

    return (
        isinstance(exc, (PynamoDBException, StillFailing))
        or _client_error(exc) is not None
        or isinstance(exc, (TimeoutError, ConnectionError))
    )


def describe(exc: BaseException) -> str:
    """A short, path-free description of a failure for logs and job errors."""
    if isinstance(exc, StillFailing):
        return str(exc)
    code = error_code(exc)
    if code:
        return f"{code} ({type(exc).__name__})"
    cause = _client_error(exc)
    return type(cause or exc).__name__


def backoff(attempt: int, *, first: float = 0.2, cap: float = 5.0) -> float:
    """Jittered exponential back-off: random in [half, all] of min(cap, first * 2^attempt)."""
    ceiling = min(cap, first * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


def retry(
    call: Callable[[], T],
    *,
    until: float,
    what: str,
    sleep: Callable[[float], Any] = time.sleep,
    extra: dict[str, Any] | None = None,
) -> T:
    """`call()`, retrying transient failures with jittered back-off until `until` (monotonic).

    A lost condition or a permanent failure is raised at once; a transient failure that
    outlasts `until` becomes `StillFailing`.
    """
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if classify(exc) is not Fault.TRANSIENT:
                raise
            wait = backoff(attempt)
            if time.monotonic() + wait > until:
                raise StillFailing(what, exc) from exc
            log.warning(
                "%s failed (%s); retrying in %.1f s", what, describe(exc), wait, extra=extra or {}
            )
            sleep(wait)
            attempt += 1


CONFLICT_RETRIES = 3  # TransactionConflict: botocore never retries it, so we do, briefly


def retry_conflicts(call: Callable[[], T]) -> T:
    """A transaction, tried again briefly when DynamoDB cancels it for a conflict."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return call()
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            if classify(exc) is not Fault.TRANSIENT:
                raise
            if attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(backoff(attempt, first=0.05, cap=0.5))
    raise AssertionError("unreachable")
