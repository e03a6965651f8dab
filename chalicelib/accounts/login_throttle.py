"""The login throttle: attempts are counted atomically before a password is checked.

Two counters, both items of the system table:
- per (username, client address): at most `OE_LOGIN_MAX_FAILURES` attempts in a window of
  `OE_LOGIN_LOCKOUT_SECONDS`. An attempt takes a slot with one conditional ADD *before*
  bcrypt runs, so 20 parallel guesses against a limit of 5 get 5 evaluations and 15 answers
  of 429; a successful login gives the slots back.
- per username, from every address: failures are counted; past
  `OE_LOGIN_USER_SLOWDOWN_AFTER` in the window, an attempt from outside
  `OE_LOGIN_TRUSTED_NETWORKS` needs the username's next free time slot (one every
  `SLOWDOWN_SECONDS`). That slows a distributed guesser down without locking the user
  out: the owner keeps getting in, from anywhere slowly and from a trusted network at once.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime

from pynamodb.exceptions import UpdateError

from chalicelib.config import settings
from chalicelib.errors import TooManyRequests
from chalicelib.store.models import SystemItem

SLOWDOWN_SECONDS = 5
_ATTEMPTS = 3  # a window that ends while we count is started again at most this often


def _pair_key(username: str, address: str) -> str:
    return f"login#{username.lower()}#{address}"


def _user_key(username: str) -> str:
    return f"login#{username.lower()}"


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _conditional_failed(exc: UpdateError) -> bool:
    return "ConditionalCheckFailed" in str(getattr(exc, "cause_response_code", "") or exc)


def _count(key: str, now: float, window: int, limit: int | None) -> int | None:
    """Add one to the counter `key` in its window, atomically; None when it is at `limit`."""
    item = SystemItem(key)
    live = SystemItem.expires > _moment(now)
    for _ in range(_ATTEMPTS):
        condition = live
        if limit is not None:
            condition &= SystemItem.failures.does_not_exist() | (SystemItem.failures < limit)
        try:
            item.update(actions=[SystemItem.failures.add(1)], condition=condition)
            return int(item.failures)
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
        try:
            # No window, or a stale one: start a new one at one. Conditional too, so of
            # two requests that both find it stale only one starts it.
            item.update(
                actions=[
                    SystemItem.failures.set(1),
                    SystemItem.expires.set(_moment(now + window)),
                    SystemItem.locked_until.remove(),
                ],
                condition=SystemItem.expires.does_not_exist() | ~live,
            )
            return 1
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
        if limit is not None:
            current = _read(key)
            if current is not None and (current.failures or 0) >= limit:
                return None
    return None


def _read(key: str) -> SystemItem | None:
    try:
        return SystemItem.get(key, consistent_read=True)
    except SystemItem.DoesNotExist:
        return None


def _retry_after(key: str, now: float) -> int:
    item = _read(key)
    if item is None or item.expires is None:
        return 1
    return max(1, math.ceil(item.expires.timestamp() - now))


def trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in settings().login_trusted_networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue  # a typo in the setting trusts nothing
    return False


def take_attempt(username: str, address: str, now: float) -> None:
    """Reserve one attempt for (username, address) or raise 429; call before checking a password."""
    s = settings()
    if (
        _count(_pair_key(username, address), now, s.login_lockout_seconds, s.login_max_failures)
        is None
    ):
        wait = _retry_after(_pair_key(username, address), now)
        raise TooManyRequests(
            f"too many failed logins for this user from your address: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if not trusted(address):
        _slow_down(username, now)


def _slow_down(username: str, now: float) -> None:
    """Past the per-username ceiling, one attempt per slot for everyone outside trusted networks."""
    s = settings()
    item = _read(_user_key(username))
    if item is None or item.expires is None or item.expires <= _moment(now):
        return
    if (item.failures or 0) < s.login_user_slowdown_after:
        return
    try:
        SystemItem(_user_key(username)).update(
            actions=[SystemItem.locked_until.set(int(now) + SLOWDOWN_SECONDS)],
            condition=SystemItem.locked_until.does_not_exist()
            | (SystemItem.locked_until <= int(now)),
        )
    except UpdateError as exc:
        if not _conditional_failed(exc):
            raise
        wait = max(1, int((_read(_user_key(username)) or item).locked_until or 0) - int(now))
        raise TooManyRequests(
            f"many failed logins for this user: logins are slowed, try again in {wait} s",
            headers={"Retry-After": str(wait)},
        ) from None


def failed(username: str, now: float) -> None:
    """Count a failed password against the username (every address together)."""
    _count(_user_key(username), now, settings().login_lockout_seconds, None)


def succeeded(username: str, address: str) -> None:
    """Give the (username, address) slots back; the per-username count runs out with its window."""
    SystemItem(_pair_key(username, address)).delete()
