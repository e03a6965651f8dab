"""Register, log in, and the admin's view of users."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.accounts import auth, users
from chalicelib.accounts.auth import Principal
from chalicelib.api.http import client_address, endpoint, ok, parse_body
from chalicelib.api.schemas import Credentials, PasswordChange, UserUpdate
from chalicelib.errors import InvalidInput, Unauthorized
from chalicelib.store.models import rfc3339


@endpoint()
def register(request: Any) -> Any:
    body = parse_body(request, Credentials)
    user = users.register(body.username, body.password)
    return ok({"user": user.username, "message": "User registered", "role": user.role})


@endpoint()
def login(request: Any) -> Any:
    body = parse_body(request, Credentials)
    token, expires = auth.login(body.username, body.password, client_address(request))
    answer: dict[str, Any] = {"token": token, "expire": rfc3339(expires)}
    if users.get_user(body.username).force_password_reset:
        answer["password_reset_required"] = True
    return answer


@endpoint(role="guest")
def refresh_token(request: Any, principal: Principal) -> Any:
    token, expires = auth.refresh(auth.bearer_token(request.headers.get("authorization")))
    return {"token": token, "expire": rfc3339(expires)}


NO_PROOF = "send 'Authorization: Bearer <token>', or username with current_password"


def _names_a_user(request: Any) -> bool:
    try:
        document = json.loads(request.raw_body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(document, dict) and "username" in document


@endpoint()
def update_password(request: Any) -> Any:
    """Bearer token and current password, or (the original server's body) username and it.

    The route has no authorizer, so a token, when sent, is checked here as the authorizer
    would; a user whose reset an admin forced may use either form.
    """
    header = request.headers.get("authorization")
    username = auth.principal_for_token(auth.bearer_token(header)).username if header else None
    try:
        body = parse_body(request, PasswordChange)
    except InvalidInput:
        if username is None and not _names_a_user(request):
            raise Unauthorized(NO_PROOF) from None
        raise
    if username is None:
        if body.username is None:
            raise Unauthorized(NO_PROOF)
        username = body.username
    elif body.username is not None and body.username != username:
        raise InvalidInput("username is not the token's user: leave it out, or send no token")
    if body.verify_password is not None and body.verify_password != body.new_password:
        raise InvalidInput("verify_password must repeat new_password")
    token, expires = auth.change_password(
        username, body.current_password, body.new_password, client_address(request),
        with_token=header is not None,
    )  # fmt: skip
    return {"status": 200, "message": "password changed", "user": username, "token": token,
            "expire": rfc3339(expires)}  # fmt: skip


@endpoint(role="guest")
def me(request: Any, principal: Principal) -> Any:
    return {"user": users.public_view(users.get_user(principal.username)), "status": 200}


@endpoint(role="admin")
def list_users(request: Any, principal: Principal) -> Any:
    items = [users.public_view(u) for u in users.list_users()]
    return {"count": len(items), "items": items}


@endpoint(role="admin")
def update_user(request: Any, user_id: str, principal: Principal) -> Any:
    body = parse_body(request, UserUpdate)
    user = users.update_user(
        user_id,
        role=body.role,
        active=body.active,
        force_password_reset=body.force_password_reset,
    )
    return {"user": users.public_view(user), "status": 200}
