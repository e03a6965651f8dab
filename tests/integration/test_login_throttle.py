"""The login throttle under concurrency, from several addresses, and the admin's way in."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.accounts import auth, login_throttle
from chalicelib.errors import TooManyRequests, Unauthorized
from tests.conftest import ADMIN

ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"
OFFICE = "192.0.2.10"


def attempt(password: str, address: str) -> str:
    try:
        auth.login(ADMIN[0], password, address)
        return "ok"
    except Unauthorized:
        return "401"
    except TooManyRequests:
        return "429"


def test_twenty_parallel_guesses_get_five_evaluations(aws):
    start = threading.Barrier(20)

    def guess(i: int) -> str:
        start.wait()
        return attempt(f"wrong-guess-{i}", ATTACKER)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(guess, range(20)))
    assert answers.count("401") == 5  # checked against the password: the limit, no more
    assert answers.count("429") == 15


def test_guesses_from_one_address_do_not_lock_the_owner_out_elsewhere(aws):
    for i in range(5):
        assert attempt(f"wrong-{i}", ATTACKER) == "401"
    assert attempt(ADMIN[1], ATTACKER) == "429"  # even the right password, from there
    assert attempt(ADMIN[1], OWNER) == "ok"


def test_the_throttle_answers_with_retry_after(aws):
    for i in range(5):
        attempt(f"wrong-{i}", ATTACKER)
    with pytest.raises(TooManyRequests) as refused:
        auth.login(ADMIN[0], ADMIN[1], ATTACKER)
    assert 0 < int(refused.value.headers["Retry-After"]) <= 300


def test_a_success_gives_the_addresses_attempts_back(aws):
    for i in range(4):
        attempt(f"wrong-{i}", OWNER)
    assert attempt(ADMIN[1], OWNER) == "ok"
    for i in range(4):
        assert attempt(f"wrong-again-{i}", OWNER) == "401"


def test_many_addresses_slow_the_username_down_but_never_lock_it(aws, settings_env):
    settings_env(OE_LOGIN_USER_SLOWDOWN_AFTER="12", OE_LOGIN_TRUSTED_NETWORKS="192.0.2.0/24")
    # A botnet: 4 guesses from each of 3 addresses reaches the per-username ceiling.
    for host in range(3):
        for i in range(4):
            assert attempt(f"wrong-{host}-{i}", f"203.0.113.{host}") == "401"
    # Past the ceiling, one attempt per slot: the next one is checked, the one after waits.
    assert attempt("still-wrong", "203.0.113.50") == "401"
    with pytest.raises(TooManyRequests) as slowed:
        auth.login(ADMIN[0], ADMIN[1], OWNER)
    assert "slowed" in slowed.value.message
    assert 0 < int(slowed.value.headers["Retry-After"]) <= login_throttle.SLOWDOWN_SECONDS
    # From the trusted network the admin gets in at once.
    assert attempt(ADMIN[1], OFFICE) == "ok"


def test_the_owner_gets_a_slot_when_it_frees(aws, settings_env):
    settings_env(OE_LOGIN_USER_SLOWDOWN_AFTER="3")
    for i in range(3):
        attempt(f"wrong-{i}", f"203.0.113.{i}")
    now = 1_900_000_000.0
    login_throttle.failed(ADMIN[0], now)  # the window of that moment is past the ceiling too
    for _ in range(3):
        login_throttle.failed(ADMIN[0], now)
    login_throttle.take_attempt(ADMIN[0], OWNER, now)  # takes the slot
    with pytest.raises(TooManyRequests):
        login_throttle.take_attempt(ADMIN[0], OWNER, now + 1)
    login_throttle.take_attempt(ADMIN[0], OWNER, now + login_throttle.SLOWDOWN_SECONDS)


def test_the_client_address_comes_from_the_gateway_not_from_headers(api):
    for i in range(5):
        r = api.call("POST", "/api/login", {"username": ADMIN[0], "password": f"nope-{i}"},
                     headers={"X-Forwarded-For": f"10.0.0.{i}"})  # fmt: skip
        assert r.status_code == 401
    r = api.call("POST", "/api/login", {"username": ADMIN[0], "password": ADMIN[1]},
                 headers={"X-Forwarded-For": "10.9.9.9"})  # fmt: skip
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
