"""Register, log in, and the admin's view of users."""

from __future__ import annotations

from typing import Any

from chalicelib import auth, users
from chalicelib.api.http import client_address, endpoint, ok, parse_body
from chalicelib.api.schemas import Credentials, PasswordChange, UserUpdate
from chalicelib.auth import Principal
from chalicelib.models import rfc3339


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


@endpoint(role="guest", password_reset_ok=True)
def update_password(request: Any, principal: Principal) -> Any:
    body = parse_body(request, PasswordChange)
    token, expires = auth.change_password(
        principal.username, body.current_password, body.new_password
    )
    return {"status": 200, "message": "password changed", "token": token,
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
