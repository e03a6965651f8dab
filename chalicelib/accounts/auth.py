"""Passwords, tokens, roles and the login throttle."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import bcrypt
import jwt
from pynamodb.exceptions import UpdateError

from chalicelib.accounts import login_throttle
from chalicelib.config import ROLES, settings
from chalicelib.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from chalicelib.store.models import User
from chalicelib.store.secret_params import jwt_signing_key

_ALGORITHM = "HS256"
_RANK = {role: rank for rank, role in enumerate(ROLES)}
MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past 72 bytes


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    # An admin asked this user to change their password: only update-password works.
    must_change_password: bool = False

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
        # Never a stored password (the policy caps it), refused after the same bcrypt work.
        bcrypt.checkpw(encoded[:MAX_PASSWORD_BYTES], _dummy_hash())
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash)
    except ValueError:
        # Not a bcrypt hash (the system user's "!"): nothing matches it, after the same work.
        bcrypt.checkpw(encoded, _dummy_hash())
        return False


def issue_token(user: User, logged_in: int | None = None) -> tuple[str, datetime]:
    """A token for `user`; `orig_iat` keeps the login time across refreshes."""
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(seconds=settings().token_ttl_seconds)
    claims = {"sub": user.username, "role": user.role, "iat": now, "exp": expires,
              "orig_iat": int(logged_in if logged_in is not None else now.timestamp()),
              "pwv": int(user.password_version or 0)}  # fmt: skip
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
    if int(claims.get("pwv", 0)) != int(user.password_version or 0):
        raise Unauthorized("the password was changed since this token was issued: log in again")
    return Principal(
        username=user.username,
        role=user.role,
        must_change_password=bool(user.force_password_reset),
    )


def refresh(token: str) -> tuple[str, datetime]:
    """A new token for a still-valid one, until OE_TOKEN_REFRESH_MAX_SECONDS after login."""
    claims = verify_token(token)
    principal = principal_for_token(token)
    logged_in = int(claims.get("orig_iat", claims["iat"]))
    window = settings().token_refresh_max_seconds
    if time.time() - logged_in > window:
        raise Unauthorized(
            f"this login is older than the refresh window ({window} s): log in again"
        )
    return issue_token(User.get(principal.username), logged_in=logged_in)


def change_password(
    username: str, current: str, new: str, address: str = "unknown", *, with_token: bool = False
) -> tuple[str, datetime]:
    """Check the current password, store the new one, end the forced reset; a new token.

    Counted by the login throttle (per account and per address) before any bcrypt runs.
    Every outcome costs the same bcrypt work (check the current password, hash the new
    one, compare it with the stored hash), so timing tells neither whether the user
    exists nor whether the current password was right. A wrong one is a 401, or a 403
    for a caller who proved who they are with a token (`with_token`). Tokens issued
    before the change stop working (their `pwv` is the old version).
    """
    check_password_policy(new)  # about the new password only: says nothing of the account
    now = time.time()
    login_throttle.take_attempt(username, address, now)
    try:
        user: User | None = User.get(username)
        stored = user.password_hash.encode()
    except User.DoesNotExist:
        user, stored = None, _dummy_hash()
    right = _password_matches(current, stored)
    new_hash = hash_password(new)
    unchanged = _password_matches(new, stored)
    if not right or user is None or user.system:
        login_throttle.failed(username, now)
        if with_token:
            raise Forbidden("current_password is not right")
        raise Unauthorized("invalid username or current_password")
    if not user.active:
        raise Unauthorized("this account is deactivated")
    login_throttle.succeeded(username, address)
    if unchanged:
        raise InvalidInput("new_password must differ from the current one")
    try:
        user.update(
            actions=[
                User.password_hash.set(new_hash),
                User.force_password_reset.set(False),
                User.password_version.add(1),
                User.updated.set(datetime.now(UTC)),
            ],
            # Two changes racing: only the one that saw the current hash wins.
            condition=User.password_hash == user.password_hash,
        )
    except UpdateError:
        raise Conflict("the password changed meanwhile: log in again") from None
    return issue_token(User.get(username))


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


def login(username: str, password: str, address: str = "unknown") -> tuple[str, datetime]:
    """Check credentials; unknown users and wrong passwords fail alike.

    `address` is the client's address as the gateway saw it; the throttle counts
    attempts per (username, address) before the password is checked.
    """
    now = time.time()
    login_throttle.take_attempt(username, address, now)
    try:
        user = User.get(username)
        ok = _password_matches(password, user.password_hash.encode())
    except User.DoesNotExist:
        user = None
        # Spend the same bcrypt time so response timing does not reveal names.
        _password_matches(password, _dummy_hash())
        ok = False
    if not ok or user is None or user.system:
        login_throttle.failed(username, now)
        raise Unauthorized("invalid username or password")
    if not user.active:
        raise Unauthorized("this account is deactivated")
    login_throttle.succeeded(username, address)
    return issue_token(user)
