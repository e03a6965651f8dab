"""Registration, login, tokens and roles through the Chalice test client."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.conftest import ADMIN


def test_register_returns_user_and_message(api):
    r = api.call(
        "POST", "/api/register", {"username": "foo@example.com", "password": "baz-baz-baz"}
    )
    assert r.status_code == 200
    assert r.data["user"] == "foo@example.com"
    assert r.data["message"] == "User registered"


def test_register_taken_name_is_409(api):
    body = {"username": "alice", "password": "password-1"}
    assert api.call("POST", "/api/register", body).status_code == 200
    r = api.call("POST", "/api/register", body)
    assert r.status_code == 409
    assert r.data == {"status": 409, "message": "username 'alice' is already taken"}


@pytest.mark.parametrize("password", ["short", "x" * 73, "é" * 37])
def test_register_password_outside_8_to_72_bytes_is_400(api, password):
    r = api.call("POST", "/api/register", {"username": "bob", "password": password})
    assert r.status_code == 400
    assert "8 to 72 bytes" in r.data["message"]


def test_register_can_be_closed(api, monkeypatch):
    from chalicelib import config

    closed = config.settings().__class__(
        **{**config.settings().__dict__, "registration_open": False}
    )
    monkeypatch.setattr("chalicelib.accounts.users.settings", lambda: closed)
    r = api.call("POST", "/api/register", {"username": "carol", "password": "password-1"})
    assert r.status_code == 403
    assert "registration is closed" in r.data["message"]


def test_new_users_are_guests(api):
    token = api.user("dave", "guest")
    r = api.call("GET", "/api/me", token=token)
    assert r.status_code == 200
    assert r.data["user"]["role"] == "guest"


def test_login_returns_hs256_token_with_claims_and_expiry(api):
    r = api.call("POST", "/api/login", {"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200
    header = jwt.get_unverified_header(r.data["token"])
    claims = jwt.decode(r.data["token"], options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["sub"] == ADMIN[0] and claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 3600
    assert r.data["expire"].endswith("Z")


def test_unknown_user_and_wrong_password_get_the_same_401(api):
    a = api.call("POST", "/api/login", {"username": "nobody", "password": "password-1"})
    b = api.call("POST", "/api/login", {"username": ADMIN[0], "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.data == b.data == {"status": 401, "message": "invalid username or password"}


def test_repeated_failures_are_throttled_with_retry_hint(api):
    for _ in range(5):
        assert (
            api.call(
                "POST", "/api/login", {"username": ADMIN[0], "password": "nope-nope"}
            ).status_code
            == 401
        )
    r = api.call("POST", "/api/login", {"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert "try again in" in r.data["message"]


def test_inactive_user_cannot_log_in_or_use_a_token(api):
    token = api.user("erin", "guest")
    admin = api.login(*ADMIN)
    assert api.call("PUT", "/api/users/erin", {"active": False}, token=admin).status_code == 200
    assert (
        api.call("POST", "/api/login", {"username": "erin", "password": "password-123"}).status_code
        == 401
    )
    assert api.call("GET", "/api/me", token=token).status_code == 401


def test_bad_and_expired_tokens_are_401(api):
    from chalicelib.store.secret_params import jwt_signing_key

    now = int(time.time())
    expired = jwt.encode(
        {"sub": ADMIN[0], "role": "admin", "iat": now - 7200, "exp": now - 3600}, jwt_signing_key()
    )
    forged = jwt.encode(
        {"sub": ADMIN[0], "role": "admin", "iat": now, "exp": now + 60}, "not-the-key"
    )
    unsigned = jwt.encode(
        {"sub": ADMIN[0], "role": "admin", "iat": now, "exp": now + 60}, None, algorithm="none"
    )
    r = api.call("GET", "/api/jobs", token=expired)
    assert r.status_code == 401 and "expired" in r.data["message"]
    for token in (forged, unsigned, "garbage"):
        r = api.call("GET", "/api/jobs", token=token)
        assert r.status_code == 401, token
        assert r.data["status"] == 401


def test_missing_token_is_401(api):
    assert api.call("GET", "/api/jobs").status_code == 401


def test_roles_guest_reads_operator_writes_admin_manages(api):
    guest = api.user("gina", "guest")
    operator = api.user("omar", "operator")
    assert api.call("GET", "/api/presets", token=guest).status_code == 200
    r = api.call(
        "POST", "/api/presets", {"name": "p", "data": '{"raw":["-c:v libx264"]}'}, token=guest
    )
    assert r.status_code == 403 and "operator" in r.data["message"]
    assert (
        api.call(
            "POST",
            "/api/presets",
            {"name": "p", "data": '{"raw":["-c:v libx264"]}'},
            token=operator,
        ).status_code
        == 200
    )
    assert api.call("GET", "/api/users", token=operator).status_code == 403
    admin = api.login(*ADMIN)
    r = api.call("GET", "/api/users", token=admin)
    assert r.status_code == 200
    assert {u["username"] for u in r.data["items"]} >= {"gina", "omar", ADMIN[0]}


def test_role_change_applies_to_existing_tokens(api):
    token = api.user("pat", "guest")
    admin = api.login(*ADMIN)
    api.call("PUT", "/api/users/pat", {"role": "operator"}, token=admin)
    r = api.call(
        "POST", "/api/presets", {"name": "q", "data": '{"raw":["-c:v libx264"]}'}, token=token
    )
    assert r.status_code == 200


def test_last_admin_cannot_be_demoted_or_deactivated(api):
    admin = api.login(*ADMIN)
    r = api.call("PUT", f"/api/users/{ADMIN[0]}", {"role": "guest"}, token=admin)
    assert r.status_code == 409 and "last active admin" in r.data["message"]
    r = api.call("PUT", f"/api/users/{ADMIN[0]}", {"active": False}, token=admin)
    assert r.status_code == 409
    api.user("second", "admin")
    r = api.call("PUT", f"/api/users/{ADMIN[0]}", {"role": "operator"}, token=admin)
    assert r.status_code == 200 and r.data["user"]["role"] == "operator"
    second = api.login("second", "password-123")
    r = api.call("PUT", "/api/users/second", {"active": False}, token=second)
    assert r.status_code == 409


def test_update_unknown_user_is_404_and_bad_role_400(api):
    admin = api.login(*ADMIN)
    assert api.call("PUT", "/api/users/ghost", {"role": "guest"}, token=admin).status_code == 404
    r = api.call("PUT", f"/api/users/{ADMIN[0]}", {"role": "emperor"}, token=admin)
    assert r.status_code == 400 and "role" in r.data["message"]


@pytest.mark.parametrize(
    "body",
    [
        "{bad",
        "[]",
        '{"username": 5, "password": "password-1"}',
        '{"username": "x"}',
        '{"username":"x","password":"y","z":1}',
    ],
)
def test_malformed_login_bodies_are_400(api, body):
    r = api.call("POST", "/api/login", body)
    assert r.status_code == 400
    assert set(r.data) == {"status", "message"}


def test_oversized_body_is_413(api):
    r = api.call("POST", "/api/register", {"username": "big", "password": "x" * 70_000})
    assert r.status_code == 413
    assert r.data["status"] == 413
