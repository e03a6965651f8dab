"""Passwords, tokens, roles and the login throttle."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import bcrypt
import jwt
from pynamodb.exceptions import UpdateError

from chalicelib.config import ROLES, settings
from chalicelib.errors import InvalidInput, TooManyRequests, Unauthorized
from chalicelib.models import SystemItem, User
from chalicelib.secret_params import jwt_signing_key

_ALGORITHM = "HS256"
_RANK = {role: rank for rank, role in enumerate(ROLES)}
MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past 72 bytes


@dataclass(frozen=True)
class Principal:
    username: str
    role: str

    def can(self, role: str) -> bool:
        return _RANK.get(self.role, -1) >= _RANK[role]


def check_password_policy(password: str) -> bytes:
    encoded = password.encode("utf-8")
    if not MIN_PASSWORD_BYTES <= len(encoded) <= MAX_PASSWORD_BYTES:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes long "
            f"(got {len(encoded)})"
        )
    return encoded


def hash_password(password: str) -> str:
    encoded = check_password_policy(password)
    return bcrypt.hashpw(encoded, bcrypt.gensalt(settings().bcrypt_rounds)).decode()


@cache
def _dummy_hash() -> bytes:
    return bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(settings().bcrypt_rounds))


def _password_matches(password: str, password_hash: bytes) -> bool:
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    return bcrypt.checkpw(encoded, password_hash)


def issue_token(user: User) -> tuple[str, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(seconds=settings().token_ttl_seconds)
    claims = {"sub": user.username, "role": user.role, "iat": now, "exp": expires}
    return jwt.encode(claims, jwt_signing_key(), algorithm=_ALGORITHM), expires


def verify_token(token: str) -> dict:
    """Decode a bearer token; the algorithm is pinned so `none` or RS/HS swaps fail."""
    try:
        return jwt.decode(
            token,
            jwt_signing_key(),
            algorithms=[_ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired: log in again") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None


def principal_for_token(token: str) -> Principal:
    """The caller behind a token, with the role and state the user has now."""
    claims = verify_token(token)
    try:
        user = User.get(claims["sub"])
    except User.DoesNotExist:
        raise Unauthorized("invalid token") from None
    if not user.active:
        raise Unauthorized("this account is deactivated")
    return Principal(username=user.username, role=user.role)


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing Authorization header: send 'Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if not token and header.count(".") == 2:
        return header.strip()
    raise Unauthorized("malformed Authorization header: send 'Bearer <token>'")


# --- login ----------------------------------------------------------------


def _throttle_key(username: str) -> str:
    return f"login#{username.lower()}"


def _check_throttle(username: str, now: int) -> None:
    try:
        item = SystemItem.get(_throttle_key(username), consistent_read=True)
    except SystemItem.DoesNotExist:
        return
    if item.locked_until and item.locked_until > now:
        wait = int(item.locked_until - now)
        raise TooManyRequests(
            f"too many failed logins for this user: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def _record_failure(username: str, now: int) -> None:
    s = settings()
    window_end = now + s.login_lockout_seconds
    window_end_at = datetime.fromtimestamp(window_end, UTC)
    item = SystemItem(_throttle_key(username))
    try:
        # Failures count within a window; a stale window starts again at one.
        item.update(
            actions=[SystemItem.failures.add(1), SystemItem.expires.set(window_end_at)],
            condition=SystemItem.expires > datetime.fromtimestamp(now, UTC),
        )
    except UpdateError:
        item.update(
            actions=[
                SystemItem.failures.set(1),
                SystemItem.expires.set(window_end_at),
                SystemItem.locked_until.remove(),
            ]
        )
    if (item.failures or 0) >= s.login_max_failures:
        item.update(actions=[SystemItem.locked_until.set(window_end)])


def login(username: str, password: str) -> tuple[str, datetime]:
    """Check credentials; unknown users and wrong passwords fail alike."""
    now = int(time.time())
    _check_throttle(username, now)
    try:
        user = User.get(username)
        ok = _password_matches(password, user.password_hash.encode())
    except User.DoesNotExist:
        user = None
        # Spend the same bcrypt time so response timing does not reveal names.
        _password_matches(password, _dummy_hash())
        ok = False
    if not ok or user is None or user.system:
        _record_failure(username, now)
        raise Unauthorized("invalid username or password")
    if not user.active:
        raise Unauthorized("this account is deactivated")
    SystemItem(_throttle_key(username)).delete()
    return issue_token(user)
