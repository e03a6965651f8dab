"""User accounts: registration, listing and role changes that keep an admin."""

from __future__ import annotations

import contextlib
import re

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.accounts.auth import hash_password
from chalicelib.config import ROLES, settings
from chalicelib.errors import Conflict, Forbidden, InvalidInput, NotFound
from chalicelib.store.models import SystemItem, User, connection, rfc3339, utcnow

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+-]{2,63}$")
SYSTEM_USER = "system:s3-drop"
_ADMINS = "active-admins"


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(
            "username must be 3 to 64 characters: letters, digits and @ . _ + - "
            "(starting with a letter or digit)"
        )
    return username


def _is_active_admin(role: str, active: bool) -> bool:
    return role == "admin" and active


def create_user(username: str, password: str, role: str | None = None) -> User:
    """Create a user; a taken name is a Conflict."""
    check_username(username)
    role = role or settings().default_role
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    user = User(username, password_hash=hash_password(password), role=role, active=True)
    try:
        with TransactWrite(connection=connection()) as tx:
            tx.save(user, condition=User.username.does_not_exist())
            if _is_active_admin(role, True):
                tx.update(SystemItem(_ADMINS), actions=[SystemItem.value.add(1)])
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in str(exc.cancellation_reasons):
            raise Conflict(f"username {username!r} is already taken") from None
        raise
    return user


def register(username: str, password: str) -> User:
    if not settings().registration_open:
        raise Forbidden("registration is closed on this server: ask an admin for an account")
    return create_user(username, password)


def ensure_system_user() -> None:
    """The owner recorded on jobs made by bucket drops; it can never log in."""
    # "!" is no bcrypt hash, so no password can ever match it.
    user = User(SYSTEM_USER, password_hash="!", role="operator", system=True)  # noqa: S106
    with contextlib.suppress(PutError):
        user.save(condition=User.username.does_not_exist())


def get_user(username: str) -> User:
    try:
        return User.get(username)
    except User.DoesNotExist:
        raise NotFound(f"no user {username!r}") from None


def list_users() -> list[User]:
    return list(User.by_name.query("user"))


def update_user(
    username: str,
    *,
    role: str | None,
    active: bool | None,
    force_password_reset: bool | None = None,
) -> User:
    """Change role, active, or force a password reset; the last active admin stays one."""
    if role is not None and role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    user = get_user(username)
    if user.system:
        raise Forbidden("the system user cannot be changed")
    new_role = user.role if role is None else role
    new_active = user.active if active is None else active
    was_admin = _is_active_admin(user.role, user.active)
    will_be_admin = _is_active_admin(new_role, new_active)
    item = User(username)
    try:
        with TransactWrite(connection=connection()) as tx:
            # Conditional on the state we read, so two admins demoting each
            # other at once cannot both succeed.
            tx.update(
                item,
                actions=[
                    User.role.set(new_role),
                    User.active.set(new_active),
                    User.updated.set(utcnow()),
                    *(
                        [User.force_password_reset.set(force_password_reset)]
                        if force_password_reset is not None
                        else []
                    ),
                ],
                condition=(User.role == user.role) & (User.active == user.active),
            )
            if was_admin and not will_be_admin:
                tx.update(
                    SystemItem(_ADMINS),
                    actions=[SystemItem.value.add(-1)],
                    condition=SystemItem.value > 1,
                )
            elif will_be_admin and not was_admin:
                tx.update(SystemItem(_ADMINS), actions=[SystemItem.value.add(1)])
    except TransactWriteError as exc:
        reasons = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            raise Conflict("cannot demote or deactivate the last active admin") from None
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise Conflict("the user changed meanwhile: read it again and retry") from None
        raise
    return get_user(username)


def public_view(user: User) -> dict:
    return {
        "id": user.username,
        "username": user.username,
        "role": user.role,
        "active": user.active,
        "force_password_reset": bool(user.force_password_reset),
        "created_date": rfc3339(user.created),
    }
