"""Shared fixtures. In-process tests run the app against moto's in-memory AWS.

`make test` runs the suite in parallel (pytest-xdist): each test module stays on one worker
(its module fixtures, such as a local stack, start once, and its tests keep their order),
each worker hands out ports from a block of its own, generated media is made once for all
workers (tests/media.py), and the after_all test runs last with every worker's record.
"""

from __future__ import annotations

import os
import secrets
import sys
import types

# Set before anything imports chalicelib: settings are read once per process.
os.environ.update(
    {
        "OE_STAGE": "local",
        "OE_BCRYPT_ROUNDS": "4",
        "OE_REGISTRATION_OPEN": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test" + secrets.token_hex(4),
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
    }
)
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest
from moto import mock_aws

from tests.polling import wait_until

# Every AWS call the runtime code (chalicelib) makes during the suite, as
# (service, operation): the policy test checks each is allowed by a function policy.
AWS_CALLS: set[tuple[str, str]] = set()
_make_api_call = botocore.client.BaseClient._make_api_call


def _recording_api_call(self, operation_name, api_params):
    if _called_from_chalicelib(sys._getframe(1)):
        AWS_CALLS.add((self.meta.service_model.signing_name, operation_name))
    return _make_api_call(self, operation_name, api_params)


def _called_from_chalicelib(frame: types.FrameType | None, depth: int = 40) -> bool:
    # A walk of the frames, not traceback.extract_stack: that reads every frame's source
    # line (about 0.6 ms a call), and the suite makes tens of thousands of AWS calls.
    while frame is not None and depth > 0:
        if "/chalicelib/" in frame.f_code.co_filename:
            return True
        frame, depth = frame.f_back, depth - 1
    return False


botocore.client.BaseClient._make_api_call = _recording_api_call


WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ... under xdist; else None
RECORD_WAIT_SECONDS = 1800  # the other workers may still be in a long test


def pytest_collection_modifyitems(items):
    """Tests marked after_all read what the rest of the suite recorded: run them last.

    Under xdist (--dist loadfile) each module is one unit of work, given out in this order:
    modules with a slow test (they start servers or encode) first, so that the quick ones
    fill in at the end, and a module holding an after_all test last of all."""
    slow = {_module(item) for item in items if item.get_closest_marker("slow")}
    last = {_module(item) for item in items if item.get_closest_marker("after_all")}
    # A stable sort: the tests of a module keep their order.
    items.sort(key=lambda item: (_module(item) in last, _module(item) not in slow,
                                 item.get_closest_marker("after_all") is not None))  # fmt: skip


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _run_folder(config: pytest.Config) -> Path:
    """A folder of this run's, shared by its xdist workers (each has its basetemp in it)."""
    return Path(config.option.basetemp).parent / "run"


def pytest_configure(config: pytest.Config) -> None:
    from ops import local_stack

    local_stack.use_ports(*_port_block())


def _port_block() -> tuple[int, int]:
    """This worker's ports: a block below the kernel's ephemeral range, at an offset drawn
    per run, so that workers never share ports and parallel runs seldom do."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:
        ephemeral = 32768
    first, size = 10000, 400
    blocks = max(1, (ephemeral - first) // size)
    run = int(os.environ.get("PYTEST_XDIST_TESTRUNUID") or secrets.token_hex(8), 16)
    index = int((WORKER or "gw0").removeprefix("gw"))
    return first + (run + index) % blocks * size, size


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker leaves the AWS calls it recorded for the after_all test (on any worker)."""
    if WORKER:
        folder = _run_folder(session.config) / "aws-calls"
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{WORKER}.json"
        partial.write_text(json.dumps(sorted(AWS_CALLS)))
        partial.replace(folder / f"{WORKER}.json")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under xdist the after_all test waits for the other workers to finish, then reads
    what they recorded as if it had run in their process."""
    if not (WORKER and item.get_closest_marker("after_all")):
        return
    folder = _run_folder(item.config) / "aws-calls"
    others = int(os.environ["PYTEST_XDIST_WORKER_COUNT"]) - 1

    def records() -> list[Path]:
        return [p for p in folder.glob("gw*.json") if p.stem != WORKER]

    wait_until(lambda: len(records()) >= others, RECORD_WAIT_SECONDS,
               f"the other {others} workers to finish: {item.nodeid} reads what they record",
               every=0.5)  # fmt: skip
    for record in records():
        AWS_CALLS.update(tuple(call) for call in json.loads(record.read_text()))


ADMIN = ("root-admin", "admin-password-1")


def _clear_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    from chalicelib.store import queues

    parameters.clear_caches()
    queues.sqs.cache_clear()
    queues.queue_url.cache_clear()


_retry_quotas: Any = None


def _fresh_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with botocore's retry state as a new container has it.

    The container's clients outlive a test (they are cached, as in Lambda), and with them
    standard mode's retry quota: a fault test that fails hundreds of calls drains it, and a
    later test's injected failures then get no botocore retries at all, only ours, with
    their longer waits (one test took 24 s instead of 3). Every quota is refilled here.

    DynamoDB's back-off after a throttle is a second, doubling; the fault tests count tries,
    not the waits between them, so they wait a twentieth of it."""
    global _retry_quotas
    import weakref

    from botocore.retries import quota, standard

    if _retry_quotas is None:
        _retry_quotas = weakref.WeakSet()
        made = quota.RetryQuota.__init__

        def tracked(self: Any, *args: Any, **kwargs: Any) -> None:
            made(self, *args, **kwargs)
            _retry_quotas.add(self)

        quota.RetryQuota.__init__ = tracked  # type: ignore[method-assign]
    for q in list(_retry_quotas):
        q.release(quota.RetryQuota.INITIAL_CAPACITY)
    scales = standard.ExponentialBackoff._DEFAULT_BACKOFF_CONFIG
    monkeypatch.setattr(standard.ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG",
                        {**scales, "throttling_base_scale": scales["throttling_base_scale"] / 20})  # fmt: skip


_boto3_sessions: dict[tuple[str | None, ...], Any] = {}


def _boto3_session() -> Any:
    """One boto3 session per worker and AWS environment, for the `aws` fixture's tests."""
    import boto3

    names = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
             "AWS_SESSION_TOKEN")  # fmt: skip
    key = tuple(os.environ.get(name) for name in names)
    if key not in _boto3_sessions:
        _boto3_sessions[key] = boto3.Session()
    return _boto3_sessions[key]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh, provisioned in-memory AWS for one test."""
    import boto3

    from ops import moto_server, moto_speed
    from tests import moto_state, moto_transactions

    moto_transactions.backups_of_named_items(monkeypatch)
    moto_speed.install(monkeypatch.setattr)
    _fresh_retries(monkeypatch)
    # moto shares its tables' dicts between threads unlocked, as its server does.
    moto_server.make_dynamodb_requests_atomic(monkeypatch.setattr)
    with mock_aws():
        # moto starts each test without boto3's default session. Sharing one keeps the
        # service models it has loaded, which halves the CPU this fixture takes; moto's
        # state is new all the same (it lives in moto's backends, not in the session).
        boto3.DEFAULT_SESSION = _boto3_session()
        _clear_caches()
        from ops import provision

        def provision_and_seed() -> None:
            provision.provision(stage="local", log=lambda _msg: None)
            provision.ensure_admin(*ADMIN)

        moto_state.provisioned(provision_and_seed)
        yield
        _clear_caches()


class Api:
    """chalice.test's HTTP client with JSON bodies and bearer tokens."""

    def __init__(self, http: Any) -> None:
        self.http = http

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(kw.pop("headers", {}))
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        response = getattr(self.http, method.lower())(path, headers=headers, body=data, **kw)
        response.data = json.loads(response.body) if response.body else None
        return response

    def login(self, username: str, password: str) -> str:
        response = self.call("POST", "/api/login", {"username": username, "password": password})
        assert response.status_code == 200, response.data
        return response.data["token"]

    def user(self, username: str, role: str, password: str = "password-123") -> str:
        """Register `username`, give it `role` as the admin, return its token."""
        assert (
            self.call(
                "POST", "/api/register", {"username": username, "password": password}
            ).status_code
            == 200
        )
        if role != "guest":
            admin = self.login(*ADMIN)
            r = self.call("PUT", f"/api/users/{username}", {"role": role}, token=admin)
            assert r.status_code == 200, r.data
        return self.login(username, password)


@pytest.fixture
def api(aws: None) -> Iterator[Api]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as client:
        yield Api(client.http)


@pytest.fixture(scope="session", autouse=True)
def _media_cache(request, tmp_path_factory) -> None:
    """Generated media is made once per run, for all of its workers (tests/media.py)."""
    from tests import media as make

    make.use_cache((_run_folder(request.config) if WORKER else tmp_path_factory.getbasetemp())
                   / "media-cache")  # fmt: skip


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Sources for encode tests, made once per test session."""
    from tests import media as make

    root = tmp_path_factory.mktemp("media")
    clip = make.av_clip(root / "clip.mp4")
    files = {
        "clip": clip,
        # Long in time for slow encodes, small on disk (2 Mb/s, 5 MB rather than 140 MB at
        # CRF 18): tests upload and download it through in-process moto.
        "long": make.av_clip(root / "long.mp4", seconds=20, bitrate="2M"),
        "audio": make.audio_clip(root / "audio.m4a"),
        "zero": root / "zero.mp4",
        "text": root / "text.mp4",
        "corrupt": root / "corrupt.mp4",
    }
    files["zero"].write_bytes(b"")
    files["text"].write_text("this is not a video\n" * 50)
    data = bytearray(clip.read_bytes())
    for offset in range(64, len(data), 97):
        data[offset] ^= 0x5A  # damage headers and payload alike
    files["corrupt"].write_bytes(bytes(data))
    return files


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    root = tmp_path / "scratch"
    monkeypatch.setenv("OE_SCRATCH_DIR", str(root))
    return root


@pytest.fixture
def settings_env(monkeypatch):
    """Set OE_* variables for one test: settings are read once per process, so re-read them."""
    from chalicelib import config

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        config.settings.cache_clear()

    yield apply
    config.settings.cache_clear()  # monkeypatch restores the variables right after
