"""The CLI's creates carry an Idempotency-Key, and a timeout or a 5xx is retried with it."""

from __future__ import annotations

import pytest
import requests

from openencoder_cli import client
from openencoder_cli.client import Api, ApiError, Unreachable


class Script:
    """A requests.Session stand-in answering from a script; it records each request's headers."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict]] = []

    def request(self, method, url, headers=None, **_kwargs):
        self.sent.append((method, url, dict(headers or {})))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, extra = answer if len(answer) == 3 else (*answer, {})
        response = requests.Response()
        response.status_code, response._content = status, body.encode()
        response.headers.update({"Content-Type": "application/json", **extra})
        return response


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(client.time, "sleep", lambda _s: None)


def keys(session: Script) -> list[str | None]:
    return [headers.get("Idempotency-Key") for _m, _u, headers in session.sent]


def test_a_timeout_and_a_503_are_retried_with_the_same_key():
    session = Script(requests.Timeout(), (503, '{"status": 503, "message": "busy"}'),
                     (200, '{"job": {"id": 7}}'))  # fmt: skip
    api = Api("http://api", "t", session=session)
    assert api.post("/jobs", {"preset": "p"}) == {"job": {"id": 7}}
    first, *rest = keys(session)
    assert first and first.startswith("cli-") and rest == [first, first]


def test_each_create_of_a_command_gets_its_own_key():
    session = Script((201, "{}"), (200, "{}"), (200, "{}"))
    api = Api("http://api", "t", session=session)
    api.post("/uploads", {})
    api.post("jobs", {})
    api.post("/presets", {})
    assert len(set(keys(session))) == 3


def test_a_first_try_still_running_is_waited_for_but_a_plain_conflict_is_not():
    running = (409, '{"status": 409, "message": "in progress"}', {"Retry-After": "1"})
    session = Script(
        running, (200, '{"job": {"id": 1}}'), (409, '{"status": 409, "message": "taken"}')
    )
    api = Api("http://api", "t", session=session)
    assert api.post("/jobs", {}) == {"job": {"id": 1}}
    with pytest.raises(ApiError) as refused:
        api.post("/presets", {})
    assert refused.value.status == 409 and len(session.sent) == 3


def test_other_posts_are_never_retried_nor_keyed():
    session = Script((502, '{"status": 502, "message": "bad gateway"}'), requests.Timeout())
    api = Api("http://api", "t", session=session)
    with pytest.raises(ApiError):
        api.post("/machines", {"region": "x", "size": "y"})  # a retry could start more droplets
    with pytest.raises(Unreachable):
        api.post("/jobs/3/restart")
    assert keys(session) == [None, None]


def test_retries_end_after_the_last_try():
    session = Script(*[(500, '{"status": 500, "message": "internal error"}')] * 4)
    api = Api("http://api", "t", session=session)
    with pytest.raises(ApiError) as failed:
        api.post("/jobs", {})
    assert failed.value.status == 500 and len(session.sent) == 1 + len(client.RETRY_DELAYS)
