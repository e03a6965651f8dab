"""The app's logging, configured once per process: one structured line per event.

Every module logs with the standard library, under the app's logger:
`logging.getLogger("openencoder.<module>")`, with `extra={"job_id": ..., "attempt": ...}`
where a job is concerned. `configure()` (called by app.py at import, and by each
process entry point) makes those records reach the output at INFO as JSON lines
(Powertools' formatter: every `extra` becomes a key) or as readable text with
`OE_LOG_FORMAT=text`. `invocation()` and `bind()` add the request id, the function
name, or a job's id and attempt to every record logged inside them in this thread.
Library chatter (botocore, pynamodb, werkzeug) stays at WARNING unless
`OE_LOG_LEVEL=DEBUG`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from chalicelib.config import settings

APP_LOGGER = "openencoder"
T = TypeVar("T")
_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "oe_log_keys", default=MappingProxyType({})
)
# Attributes every LogRecord has; anything else on a record was passed as `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class _ContextFilter(logging.Filter):
    """Adds the keys bound in this thread (request id, job id, ...) unless the call set them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _bound.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...`: the same fields, for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            k: v
            for k, v in vars(record).items()
            if k not in _STANDARD and v is not None and k != "aws_request_id"
        }
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return line


class _StdoutHandler(logging.StreamHandler):
    """Writes to the current sys.stdout (Lambda ships stdout to CloudWatch)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        # Resolved at each write: a test harness or the local stack may swap sys.stdout.
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def formatter() -> logging.Formatter:
    if settings().log_format == "text":
        return _TextFormatter()
    return LambdaPowertoolsFormatter(utc=True, service=APP_LOGGER)


def configure() -> None:
    """Route the app's records to stdout at OE_LOG_LEVEL (INFO); idempotent.

    The app's logger propagates to the root, where one handler formats every
    record; the root stays at WARNING so libraries stay quiet. In Lambda the
    runtime's own root handler is reused with this formatter (a second one
    would print every line twice).
    """
    s = settings()
    level = logging.getLevelName(s.log_level)
    level = level if isinstance(level, int) else logging.INFO
    app_logger = logging.getLogger(APP_LOGGER)
    app_logger.setLevel(level)
    app_logger.propagate = True
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    ours = [h for h in root.handlers if getattr(h, "openencoder", False)]
    if not ours:
        in_lambda = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and root.handlers
        ours = list(root.handlers) if in_lambda else [_StdoutHandler()]
        for handler in ours:
            handler.openencoder = True  # type: ignore[attr-defined]
            handler.addFilter(_ContextFilter())
            if handler not in root.handlers:
                root.addHandler(handler)
    for handler in ours:
        handler.setFormatter(formatter())


@contextlib.contextmanager
def bind(**keys: Any) -> Iterator[None]:
    """Add `keys` to every record logged in this thread inside the block."""
    token = _bound.set({**_bound.get(), **{k: v for k, v in keys.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def invocation(lambda_context: Any, call: Callable[[], T]) -> T:
    """Run one function invocation with its request id and function name on every record."""
    with bind(
        request_id=getattr(lambda_context, "aws_request_id", None),
        function=getattr(lambda_context, "function_name", None),
    ):
        return call()
