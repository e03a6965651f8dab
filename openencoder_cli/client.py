"""The HTTP client of the public API: JSON in and out, errors as exceptions.

Only the public HTTP API is used (no AWS SDK), so the CLI works the same against
the local stack and a deployed stage.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

TIMEOUT = (10, 60)  # connect, read (seconds)
RENEW_WITHIN = timedelta(minutes=15)
# POSTs the API makes idempotent with an Idempotency-Key: only these are retried, with
# the same key, after a timeout or a 5xx (the first try may have created the resource).
KEYED = frozenset({"/jobs", "/job", "/uploads", "/presets"})
RETRY_DELAYS = (0.5, 1.0, 2.0)


class CliError(Exception):
    """A failure shown to the user as one line; `exit_code` is what the process returns."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(CliError):
    """The API could not be reached (exit 2)."""


class NotLoggedIn(CliError):
    """No API or no token to call it with (exit 2)."""


class ApiError(CliError):
    """The API answered with an error: its `{"status", "message"}` (exit 1)."""

    exit_code = 1

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.api_message = message
        self.body = body


def error_of(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return ApiError(response.status_code, body["message"], body)
    text = " ".join(response.text.split())[:200] or response.reason or "no answer"
    return ApiError(response.status_code, text, body)


Renewal = tuple[str, datetime | None]


class Api:
    """Calls `<base>/<path>` with the bearer token.

    `renew` is asked for a fresh token when the current one has less than 15 minutes
    left (a watch can outlast a token); `relogin` gets a new one after a 401.
    """

    def __init__(
        self,
        base: str,
        token: str | None = None,
        *,
        expires: datetime | None = None,
        renew: Callable[[str], Renewal | None] | None = None,
        relogin: Callable[[], Renewal] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.expires = expires
        self.renew = renew
        self.relogin = relogin
        self.http = session or requests.Session()
        # One key per command: a random base, and a number for each create it sends.
        self._keys = (f"cli-{uuid.uuid4()}-{n}" for n in itertools.count(1))

    def _renew_if_due(self) -> None:
        if self.renew is None or self.token is None or self.expires is None:
            return
        if self.expires - datetime.now(UTC) > RENEW_WITHIN:
            return
        renewed = self.renew(self.token)
        if renewed is None:
            self.renew = None  # no refresh route, or outside its window: use it to the end
        else:
            self.token, self.expires = renewed

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; connection failures become `Unreachable`."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return self.http.request(
                method, self.url(path), headers=headers, timeout=TIMEOUT, **kwargs
            )
        except requests.ConnectionError:
            raise Unreachable(
                f"cannot reach the API at {self.base}: is it running? (set --api or OE_API)"
            ) from None
        except requests.Timeout:
            raise Unreachable(f"the API at {self.base} did not answer in time") from None
        except requests.RequestException as exc:
            raise Unreachable(f"calling {self.base} failed: {exc}") from None

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """The decoded JSON answer; any 4xx/5xx raises `ApiError` with the API's message."""
        if body is not None:
            kwargs["json"] = body
        self._renew_if_due()
        if method.upper() == "POST" and "/" + path.strip("/") in KEYED:
            kwargs["headers"] = {
                **(kwargs.get("headers") or {}),
                "Idempotency-Key": next(self._keys),
            }
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self.relogin is not None:
            # A cached token the server no longer accepts (a restarted local stack signs
            # with a new key): log in again once and repeat the call.
            (self.token, self.expires), self.relogin = self.relogin(), None
            response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_of(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code, f"the API answered {path} with something that is not JSON"
            ) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """`raw`, retried with its Idempotency-Key (if it has one) after a timeout or a 5xx."""
        keyed = "Idempotency-Key" in (kwargs.get("headers") or {})
        for delay in (*RETRY_DELAYS, None):
            try:
                response = self.raw(method, path, **kwargs)
            except Unreachable:
                if not keyed or delay is None:
                    raise
            else:
                # A 409 with Retry-After: the first try with this key is still running.
                busy = response.status_code == 409 and "Retry-After" in response.headers
                if not keyed or delay is None or not (response.status_code >= 500 or busy):
                    return response
            time.sleep(delay)
        raise AssertionError("unreachable")  # the last round returns or raises

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, {} if body is None else body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, {} if body is None else body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)
