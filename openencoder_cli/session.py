"""Which API to call and with which token.

The API is, first found: `--api`, `OE_API`, the API of the last `openencoder login`,
the `.local/stack.json` of the checkout around the working folder (`make run`).
The token is `OE_TOKEN`, else the saved login for that API (refreshed through
`POST /api/refresh-token` when it has less than 15 minutes left), else, for the
local stack, a login as its admin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from openencoder_cli import config
from openencoder_cli.client import Api, ApiError, NotLoggedIn, Renewal


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def login(base: str, username: str, password: str) -> dict[str, Any]:
    """Log in and return the session to save: username, token, expire."""
    answer = Api(base).post("/login", {"username": username, "password": password})
    return {"username": username, "token": answer["token"], "expire": answer.get("expire")}


def remember(base: str, saved: dict[str, Any], *, current: bool) -> None:
    document = config.load()
    document["sessions"][base] = saved
    if current:
        document["current"] = base
    config.save(document)


def forget(base: str) -> bool:
    document = config.load()
    # "current" stays: the next command says "not logged in at <api>", not "no API".
    found = document["sessions"].pop(base, None) is not None
    config.save(document)
    return found


def api_base(api_option: str | None = None) -> str:
    raw = (
        api_option
        or os.environ.get("OE_API")
        or config.load().get("current")
        or (config.find_stack() or {}).get("api")
    )
    if not raw:
        raise NotLoggedIn(
            "no API configured: run `openencoder login --api URL`, set OE_API, "
            "or run `make run` in a checkout"
        )
    return config.normalize_api(raw)


def renewer(base: str) -> Callable[[str], Renewal | None]:
    """Renew a token through `POST /api/refresh-token` and save it; None when refused."""

    def renew(token: str) -> Renewal | None:
        try:
            answer = Api(base, token).post("/refresh-token")
        except ApiError:
            # No refresh route (an older server) or outside the refresh window: the
            # token still works until it expires.
            return None
        saved = config.load()["sessions"].get(base) or {}
        remember(base, {**saved, "token": answer["token"], "expire": answer.get("expire")},
                 current=False)  # fmt: skip
        return answer["token"], parse_time(answer.get("expire"))

    return renew


def connect(api_option: str | None = None, *, need_token: bool = True) -> Api:
    """An `Api` for the chosen API, logged in (or anonymous when `need_token` is false)."""
    base = api_base(api_option)
    if os.environ.get("OE_TOKEN"):
        return Api(base, os.environ["OE_TOKEN"])
    stack = config.find_stack()
    admin = (stack or {}).get("admin") or {}
    from_stack = (
        stack is not None
        and config.normalize_api(stack["api"]) == base
        and bool(admin.get("username"))
        and bool(admin.get("password"))
    )

    def stack_login() -> Renewal:
        saved = login(base, admin["username"], admin["password"])
        remember(base, saved, current=False)
        return saved["token"], parse_time(saved.get("expire"))

    saved = config.load()["sessions"].get(base) or {}
    token, expires = saved.get("token"), parse_time(saved.get("expire"))
    if token and expires is not None and expires <= datetime.now(UTC):
        token = None  # expired: log in again (the local stack) or ask for a login
    if token is None and from_stack:
        token, expires = stack_login()
    if token is None:
        if not need_token:
            return Api(base)
        what = "your login has expired" if saved else "you are not logged in"
        hint = "run `openencoder login`"
        if stack is not None and config.normalize_api(stack["api"]) == base:
            # A restarted local stack keeps its admin but no longer knows the password.
            hint = (f"run `openencoder login -u {admin.get('username') or 'admin'}` with the "
                    "password the first `make run` printed")  # fmt: skip
        raise NotLoggedIn(f"{what} at {base}: {hint}")
    return Api(base, token, expires=expires, renew=renewer(base),
               relogin=stack_login if from_stack else None)  # fmt: skip
