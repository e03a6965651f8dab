"""Refreshing tokens within the refresh window, changing passwords, and forced resets."""

from __future__ import annotations

import time

import jwt

from chalicelib.accounts import auth
from chalicelib.store.models import User
from chalicelib.store.secret_params import jwt_signing_key
from tests.conftest import ADMIN


def claims(token: str) -> dict:
    return jwt.decode(token, jwt_signing_key(), algorithms=["HS256"])


def test_a_valid_token_is_refreshed_keeping_the_login_time(api):
    token = api.user("ana", "operator")
    r = api.call("POST", "/api/refresh-token", token=token)
    assert r.status_code == 200, r.data
    fresh = r.data["token"]
    assert claims(fresh)["orig_iat"] == claims(token)["orig_iat"]
    assert r.data["expire"].endswith("Z")
    assert api.call("GET", "/api/jobs", token=fresh).status_code == 200


def test_a_token_past_the_refresh_window_is_not_refreshed(api):
    api.user("ana", "operator")
    week_ago = int(time.time()) - 7 * 86400 - 60
    old_login, _ = auth.issue_token(User.get("ana"), logged_in=week_ago)
    r = api.call("POST", "/api/refresh-token", token=old_login)
    assert r.status_code == 401 and "refresh window" in r.data["message"]
    day_ago, _ = auth.issue_token(User.get("ana"), logged_in=int(time.time()) - 86400)
    r = api.call("POST", "/api/refresh-token", token=day_ago)
    assert (
        r.status_code == 200 and claims(r.data["token"])["orig_iat"] == claims(day_ago)["orig_iat"]
    )


def test_expired_or_missing_tokens_are_not_refreshed(api):
    assert api.call("POST", "/api/refresh-token").status_code == 401
    expired = jwt.encode(
        {"sub": ADMIN[0], "role": "admin", "iat": int(time.time()) - 7200,
         "exp": int(time.time()) - 3600, "orig_iat": int(time.time()) - 7200},
        jwt_signing_key(), algorithm="HS256",
    )  # fmt: skip
    r = api.call("POST", "/api/refresh-token", token=expired)
    assert r.status_code == 401 and "expired" in r.data["message"]


def test_changing_a_password_needs_the_current_one_and_ends_older_tokens(api):
    token = api.user("ana", "operator", password="first-password")
    path = "/api/update-password"
    wrong = api.call("POST", path, {"current_password": "nope-nope", "new_password": "second-pw-1"},
                     token=token)  # fmt: skip
    assert wrong.status_code == 403 and "current_password" in wrong.data["message"]
    assert api.call("POST", path, {"current_password": "first-password",
                                   "new_password": "second-pw-1"}).status_code == 401  # fmt: skip
    r = api.call("POST", path, {"current_password": "first-password", "new_password": "second-pw-1"},
                 token=token)  # fmt: skip
    assert r.status_code == 200, r.data
    assert api.call("GET", "/api/jobs", token=token).status_code == 401  # issued before the change
    assert api.call("GET", "/api/jobs", token=r.data["token"]).status_code == 200
    assert api.login("ana", "second-pw-1")


def test_a_forced_reset_blocks_everything_until_the_password_is_changed(api):
    token = api.user("ana", "operator", password="first-password")
    admin = api.login(*ADMIN)
    r = api.call("PUT", "/api/users/ana", {"force_password_reset": True}, token=admin)
    assert r.status_code == 200 and r.data["user"]["force_password_reset"] is True
    login = api.call("POST", "/api/login", {"username": "ana", "password": "first-password"})
    assert login.status_code == 200 and login.data["password_reset_required"] is True
    for method, path in (("GET", "/api/jobs"), ("GET", "/api/me"), ("POST", "/api/refresh-token"),
                         ("GET", "/api/presets")):  # fmt: skip
        blocked = api.call(method, path, token=token)
        assert blocked.status_code == 403, (path, blocked.data)
        assert "change your password" in blocked.data["message"]
    path = "/api/update-password"
    # The original let an empty new password clear the reset; here it is refused.
    for new in ("", "short", "first-password"):
        r = api.call("POST", path, {"current_password": "first-password", "new_password": new},
                     token=login.data["token"])  # fmt: skip
        assert r.status_code == 400, (new, r.data)
    assert User.get("ana").force_password_reset is True
    r = api.call("POST", path, {"current_password": "first-password", "new_password": "a-new-one-1"},
                 token=login.data["token"])  # fmt: skip
    assert r.status_code == 200
    assert api.call("GET", "/api/jobs", token=r.data["token"]).status_code == 200
    assert User.get("ana").force_password_reset is False


ORIGINAL_BODY = {"username": "ana", "current_password": "first-password",
                 "new_password": "second-pw-1", "verify_password": "second-pw-1"}  # fmt: skip


def test_the_original_servers_body_changes_a_password_with_no_token(api):
    token = api.user("ana", "operator", password="first-password")
    r = api.call("POST", "/api/update-password", ORIGINAL_BODY)
    assert r.status_code == 200, r.data
    assert r.data["user"] == "ana" and r.data["message"] == "password changed"
    assert api.call("GET", "/api/jobs", token=r.data["token"]).status_code == 200
    # Every token from before the change is revoked, for use and for refresh alike.
    assert api.call("GET", "/api/jobs", token=token).status_code == 401
    assert api.call("POST", "/api/refresh-token", token=token).status_code == 401
    assert api.login("ana", "second-pw-1")


def test_a_wrong_current_password_and_an_unknown_user_are_the_same_401(api):
    api.user("ana", "operator", password="first-password")
    wrong = api.call("POST", "/api/update-password", {**ORIGINAL_BODY, "current_password": "no-no"})
    nobody = api.call("POST", "/api/update-password", {**ORIGINAL_BODY, "username": "nobody-1"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.data["message"] == nobody.data["message"]
    assert api.login("ana", "first-password")


def test_every_outcome_of_a_password_change_costs_the_same_bcrypt_work(api, monkeypatch):
    api.user("ana", "operator", password="first-password")
    auth._dummy_hash()  # made once per container, before any request is timed
    calls: list[str] = []
    for name in ("checkpw", "hashpw"):
        original = getattr(auth.bcrypt, name)
        monkeypatch.setattr(
            auth.bcrypt, name, lambda *a, _o=original, _n=name: (calls.append(_n), _o(*a))[1]
        )

    def work(body: dict) -> list[str]:
        calls.clear()
        api.call("POST", "/api/update-password", body)
        return sorted(calls)

    unknown = work({**ORIGINAL_BODY, "username": "nobody-1"})
    wrong = work({**ORIGINAL_BODY, "current_password": "not-it-at-all"})
    too_long = work({**ORIGINAL_BODY, "current_password": "x" * 100})
    right = work(ORIGINAL_BODY)
    assert unknown == wrong == too_long == right == ["checkpw", "checkpw", "hashpw"]


def test_password_changes_are_throttled_like_logins(api):
    api.user("ana", "operator", password="first-password")
    for i in range(5):
        r = api.call(
            "POST", "/api/update-password", {**ORIGINAL_BODY, "current_password": f"g-{i}"}
        )
        assert r.status_code == 401
    r = api.call("POST", "/api/update-password", ORIGINAL_BODY)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # The login throttle counts the same account from the same address.
    assert api.call("POST", "/api/login", {"username": "ana", "password": "first-password"}
                    ).status_code == 429  # fmt: skip


def test_a_mistyped_verify_password_or_another_users_name_beside_a_token_is_refused(api):
    token = api.user("ana", "operator", password="first-password")
    api.user("bob", "operator")
    r = api.call("POST", "/api/update-password", {**ORIGINAL_BODY, "verify_password": "other-1"})
    assert r.status_code == 400 and "verify_password" in r.data["message"]
    r = api.call("POST", "/api/update-password", {**ORIGINAL_BODY, "username": "bob"}, token=token)
    assert r.status_code == 400 and "token's user" in r.data["message"]
    assert api.call("POST", "/api/update-password", {}).status_code == 401
