"""Request parsing, role checks and the one place domain errors become HTTP answers."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import AuthResponse, Response
from pydantic import BaseModel, ValidationError

from chalicelib.accounts import auth
from chalicelib.accounts.auth import Principal
from chalicelib.config import settings
from chalicelib.errors import (
    Forbidden,
    InvalidInput,
    OpenEncoderError,
    Unauthorized,
    Unavailable,
)
from chalicelib.store import faults

log = logging.getLogger("openencoder.api")
M = TypeVar("M", bound=BaseModel)
_REQUEST_ID = "x-request-id"
RETRY_AFTER_SECONDS = "5"
_BUGS = ("ValidationException", "SerializationException")  # requests this code built wrong
BUSY = "a backend service is busy or unavailable; nothing was changed, try again shortly"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body={"status": status, "message": message},
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def ok(body: dict[str, Any], status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


# --- authorizer -------------------------------------------------------------


def authorize(token_header: str) -> AuthResponse:
    """Chalice's built-in authorizer: admit every route, carry who is calling.

    A bad token is admitted as anonymous with the reason, so the route answers
    401 in the API's own JSON shape; the role is checked per route (403).
    """
    try:
        principal = auth.principal_for_token(auth.bearer_token(token_header))
    except OpenEncoderError as exc:
        context = {"error": exc.message, "error_status": str(exc.status)}
        return AuthResponse(routes=["*"], principal_id="anonymous", context=context)
    except Exception as exc:
        if not faults.is_backend_error(exc):
            raise
        log.warning("authorizer: backend failure %s", faults.describe(exc))
        context = {"error": BUSY, "error_status": "503"}
        return AuthResponse(routes=["*"], principal_id="anonymous", context=context)
    return AuthResponse(
        routes=["*"],
        principal_id=principal.username,
        context={
            "username": principal.username,
            "role": principal.role,
            "must_change_password": "1" if principal.must_change_password else "",
        },
    )


RESET_FIRST = (
    "an admin requires you to change your password before anything else: "
    "POST /api/update-password with current_password and new_password"
)


def principal_of(request: Any, role: str, password_reset_ok: bool = False) -> Principal:
    context = (request.context or {}).get("authorizer") or {}
    if "role" not in context:
        if context.get("error_status") == "503":
            raise Unavailable(context["error"])
        raise Unauthorized(context.get("error") or "missing or invalid token")
    principal = Principal(username=context["username"], role=context["role"])
    if context.get("must_change_password") and not password_reset_ok:
        raise Forbidden(RESET_FIRST)
    if not principal.can(role):
        raise Forbidden(f"this needs the {role} role; you are {principal.role}")
    return principal


def client_address(request: Any) -> str:
    """The caller's address as API Gateway saw it (never a client-supplied header)."""
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


# --- endpoints --------------------------------------------------------------


def endpoint(
    role: str | None = None, *, password_reset_ok: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Wrap a controller: check the caller's role, map domain errors to JSON answers.

    A user whose password reset an admin forced gets 403 everywhere but where
    `password_reset_ok` (update-password).
    """

    def wrap(func: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(func)
        def handler(request: Any, *args: Any, **kwargs: Any) -> Response:
            try:
                if role is not None:
                    kwargs["principal"] = principal_of(request, role, password_reset_ok)
                result = func(request, *args, **kwargs)
                return result if isinstance(result, Response) else ok(result)
            except OpenEncoderError as exc:
                headers = dict(exc.headers)
                if exc.status == 401:
                    headers.setdefault("WWW-Authenticate", "Bearer")
                if exc.status == 503:
                    headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
                return error_response(exc.status, exc.message, headers)
            except Exception as exc:
                # AWS failing or unreachable (after botocore's retries) is retryable: a 503.
                # DynamoDB writes that change state are single transactions, so nothing is
                # half-written. Anything else is a bug: the middleware answers 500.
                if not faults.is_backend_error(exc) or faults.error_code(exc) in _BUGS:
                    raise
                log.warning("%s: backend failure %s", func.__name__, faults.describe(exc))
                return error_response(503, BUSY, {"Retry-After": RETRY_AFTER_SECONDS})

        return handler

    return wrap


def parse_body(request: Any, model: type[M]) -> M:
    raw = request.raw_body or b""  # its size is checked once, for every route, by `guard`
    try:
        document = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[..." nests past the stack
        raise InvalidInput("request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidInput("request body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "missing":
            raise InvalidInput(f"field {where!r} is required") from None
        if first["type"] == "extra_forbidden":
            raise InvalidInput(f"unknown field {where!r}") from None
        raise InvalidInput(f"field {where!r}: {first['msg']}") from None


def _whole_number(value: str, maximum: int) -> int | None:
    # ASCII digits only: str.isdigit() also admits "²" and "١٢", which int() then
    # refuses (a 500) or reads as another number.
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)):
        return None
    number = int(value)
    return number if number <= maximum else None


MAX_QUERY_NUMBER = 10**9 - 1
MAX_ID = 10**15 - 1


def query_int(request: Any, name: str, default: int) -> int:
    value = (request.query_params or {}).get(name)
    if value is None or value == "":
        return default
    number = _whole_number(value, MAX_QUERY_NUMBER)
    if number is None:
        raise InvalidInput(
            f"query parameter {name!r} must be a whole number of 0 to {MAX_QUERY_NUMBER} "
            "written in ASCII digits"
        )
    return number


def path_int(value: str, what: str) -> int:
    number = _whole_number(value, MAX_ID)
    if number is None:
        raise InvalidInput(
            f"{what} must be a whole number of 0 to {MAX_ID} written in ASCII digits"
        )
    return number


# --- middleware ---------------------------------------------------------------


def guard(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Size limit and JSON error shape for answers Chalice itself produces."""
    raw = getattr(event, "raw_body", b"") or b""
    if len(raw) > settings().max_body_bytes:
        return error_response(413, f"request body is over {settings().max_body_bytes} bytes")
    try:
        response = get_response(event)
    except Exception:
        log.exception("unhandled error")
        return error_response(500, "internal error: it has been logged")
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Message" in body:
        if response.status_code >= 500:
            log.error("chalice error %s: %s", response.status_code, body)
        return error_response(response.status_code, str(body["Message"]), None)
    return response
