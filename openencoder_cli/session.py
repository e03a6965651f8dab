"""Which API to call and with which token.

The API is, first found: `--api`, `OE_API`, the API of the last `openencoder login`,
the `.local/stack.json` of the checkout around the working folder (`make run`).
The token is `OE_TOKEN`, else the saved login for that API (refreshed through
`POST /api/refresh-token` when it has less than 15 minutes left), else, for the
local stack, the admin token it keeps in `.local/stack.json` (a fresh one at every start,
renewed while it runs), or a login with the admin password a first start wrote there.
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


def stack_admin(base: str) -> tuple[dict[str, Any], Callable[[], Renewal] | None]:
    """The local stack's admin (from `.local/stack.json`) if it serves `base`, and a way to
    get that admin a token: the token the stack keeps there, else a login with its password.
    """
    stack = config.find_stack()
    if stack is None or config.normalize_api(stack["api"]) != base:
        return {}, None
    admin = stack.get("admin") or {}
    if not admin.get("username"):
        return admin, None

    def from_stack() -> Renewal:
        # Read again: a restarted (or long-running) stack has written a newer token since.
        facts = config.find_stack() or stack
        kept = facts.get("admin_token") or {}
        expires = parse_time(kept.get("expire"))
        if kept.get("token") and expires is not None and expires > datetime.now(UTC):
            saved = {"username": admin["username"], "token": kept["token"],
                     "expire": kept["expire"]}  # fmt: skip
        elif (facts.get("admin") or {}).get("password"):
            saved = login(base, admin["username"], facts["admin"]["password"])
        else:
            raise NotLoggedIn(
                f"the local stack at {base} left no admin token in .local/stack.json: "
                f"run `openencoder login -u {admin['username']}`"
            )
        remember(base, saved, current=False)
        return saved["token"], parse_time(saved.get("expire"))

    has_token = bool((stack.get("admin_token") or {}).get("token"))
    return admin, from_stack if has_token or admin.get("password") else None


def connect(api_option: str | None = None, *, need_token: bool = True) -> Api:
    """An `Api` for the chosen API, logged in (or anonymous when `need_token` is false)."""
    base = api_base(api_option)
    if os.environ.get("OE_TOKEN"):
        return Api(base, os.environ["OE_TOKEN"])
    admin, stack_login = stack_admin(base)
    saved = config.load()["sessions"].get(base) or {}
    token, expires = saved.get("token"), parse_time(saved.get("expire"))
    if token and expires is not None and expires <= datetime.now(UTC):
        token = None  # expired: log in again (the local stack) or ask for a login
    if token is None and stack_login is not None:
        token, expires = stack_login()
    if token is None:
        if not need_token:
            return Api(base)
        what = "your login has expired" if saved else "you are not logged in"
        hint = "run `openencoder login`"
        if admin:
            # An older stack.json: no token, and a restart does not know the password.
            hint = (f"run `openencoder login -u {admin.get('username') or 'admin'}` with the "
                    "password the first `make run` printed")  # fmt: skip
        raise NotLoggedIn(f"{what} at {base}: {hint}")
    return Api(base, token, expires=expires, renew=renewer(base), relogin=stack_login)
