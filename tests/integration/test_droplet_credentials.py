"""Droplet credentials end to end: a droplet made by POST /api/machines trades its secret for
STS credentials over HTTP, botocore refreshes them through credential_process before they
expire, and deleting the droplet revokes them."""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.session
import pytest
import yaml
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import CredentialRetrievalError

from chalicelib.config import settings
from chalicelib.fleet import cloudinit, droplet_metadata
from chalicelib.store.models import SystemItem
from tests.conftest import ADMIN
from tests.fake_digitalocean import FakeDigitalOcean, FakeMetadata

DO_TOKEN = "credentials-do-token"


@pytest.fixture
def api_over_http(api):
    """The app behind a real HTTP port (through chalice.test's client), as droplets see it."""
    calls: list[tuple[str, int]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # no 40 ms wait between headers and body

        def log_message(self, *args):
            pass

        def do_POST(self):  # the only method droplets use
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:  # chalice.test's client is not meant for threads
                answer = api.http.post(self.path, headers=dict(self.headers.items()), body=body)
            calls.append((self.path, answer.status_code))
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api", calls
    server.shutdown()
    server.server_close()


@pytest.fixture
def droplet(api, api_over_http, settings_env, tmp_path, monkeypatch):
    """One droplet made through POST /api/machines, its metadata service, secret file and cache."""
    url, calls = api_over_http
    fake_do = FakeDigitalOcean(DO_TOKEN)
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake_do.start())
    boto3.client("ssm").put_parameter(
        Name=settings().do_token_parameter, Value=DO_TOKEN, Type="SecureString"
    )
    metadata = FakeMetadata(None)
    settings_env(
        OE_API_URL=url,
        OE_DROPLET_METADATA_URL=metadata.start(),
        OE_DROPLET_SECRET_FILE=str(tmp_path / "droplet-secret"),
        OE_DROPLET_CREDENTIALS_CACHE=str(tmp_path / "run" / "credentials.json"),
    )
    droplet_metadata.forget()
    admin = api.login(*ADMIN)
    body = {"provider": "digitalocean", "region": "nyc3", "size": "c-2", "count": 1}
    made = api.call("POST", "/api/machines", body, token=admin)
    assert made.status_code == 200, made.data
    droplet_id = made.data["machine"][0]["id"]
    # What cloud-init would write on the droplet, taken from the user data DO received.
    user_data = fake_do.droplets[droplet_id]["user_data"]
    files = {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"]}
    (tmp_path / "droplet-secret").write_text(files[cloudinit.SECRET_FILE])
    metadata.droplet_id = droplet_id
    # botocore's own config file, as on the droplet, with this Python.
    config = tmp_path / "aws-config"
    config.write_text(
        "[default]\nregion = us-east-1\n"
        f"credential_process = {sys.executable} -m chalicelib.fleet.droplet_credentials\n"
    )
    yield {"id": droplet_id, "secret": files[cloudinit.SECRET_FILE].strip(), "config": config,
           "calls": calls, "admin": admin, "do": fake_do, "cache": tmp_path / "run" / "credentials.json"}  # fmt: skip
    droplet_metadata.forget()
    metadata.stop()
    fake_do.stop()


def droplet_session(config) -> botocore.session.Session:
    """A botocore session that knows only what the droplet knows: no keys in its environment."""
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(config))
    session.set_config_variable("credentials_file", str(config.parent / "no-credentials"))
    resolver = session.get_component("credential_provider")
    resolver.remove("env")  # this test process has keys in its environment; a droplet has none
    return session


def credential_calls(calls) -> list[int]:
    return [status for path, status in calls if path == "/api/worker/credentials"]


def test_a_droplet_trades_its_secret_for_the_worker_roles_credentials(droplet, caplog):
    with caplog.at_level(logging.DEBUG, logger="openencoder"):
        credentials = droplet_session(droplet["config"]).get_credentials()
        assert isinstance(credentials, RefreshableCredentials)
        frozen = credentials.get_frozen_credentials()
    assert frozen.token and frozen.access_key != boto3.Session().get_credentials().access_key
    identity = boto3.client(
        "sts", aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    ).get_caller_identity()  # fmt: skip
    assert identity["Arn"].endswith(
        f":assumed-role/{settings().worker_role_name}/droplet-{droplet['id']}"
    )
    assert credential_calls(droplet["calls"]) == [200]
    # Only a hash is kept, and neither the secret nor the keys are logged.
    stored = SystemItem.get(f"droplet#{droplet['id']}")
    assert droplet["secret"] not in json.dumps(stored.attribute_values, default=str)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("openencoder"))
    assert droplet["secret"] not in logged and frozen.secret_key not in logged


def test_credentials_are_refreshed_before_they_expire(droplet, settings_env):
    # 15 minutes: inside botocore's refresh window at once, so each use asks for fresh ones.
    settings_env(OE_WORKER_CREDENTIALS_SECONDS="900")
    credentials = droplet_session(droplet["config"]).get_credentials()
    first = credentials.get_frozen_credentials()
    second = credentials.get_frozen_credentials()
    assert first.access_key != second.access_key
    calls = credential_calls(droplet["calls"])
    assert len(calls) >= 2 and set(calls) == {200}


def test_fresh_credentials_are_reused_not_fetched_again(droplet):
    credentials = droplet_session(droplet["config"]).get_credentials()
    first = credentials.get_frozen_credentials()
    # A second client on the droplet (PynamoDB makes its own session) reads the cache.
    other = droplet_session(droplet["config"]).get_credentials().get_frozen_credentials()
    assert first.access_key == other.access_key
    assert credential_calls(droplet["calls"]) == [200]
    assert oct(droplet["cache"].stat().st_mode & 0o777) == "0o600"


def test_deleting_the_droplet_revokes_its_credentials(api, droplet):
    r = api.call("DELETE", f"/api/machines/{droplet['id']}", token=droplet["admin"])
    assert r.status_code == 200
    with pytest.raises(CredentialRetrievalError, match="HTTP 401"):
        droplet_session(droplet["config"]).get_credentials()
    assert credential_calls(droplet["calls"]) == [401]


def test_the_credentials_route_refuses_anyone_without_the_droplets_secret(droplet, api):
    for header in (None, "Bearer something", "Droplet wrong-secret", "Droplet ", "droplet x"):
        headers = {"Authorization": header} if header else {}
        r = api.call("POST", "/api/worker/credentials", {"droplet_id": droplet["id"]},
                     headers=headers)  # fmt: skip
        assert r.status_code == 401 and "credentials" not in r.data, header
    for body in ('{"droplet_id": "1"}', '{"droplet_id": -1}', "{}", "[]", "x"):
        r = api.call("POST", "/api/worker/credentials", body,
                     headers={"Authorization": f"Droplet {droplet['secret']}"})  # fmt: skip
        assert r.status_code == 400, body


def test_a_secret_is_good_only_for_its_own_droplet(droplet, api):
    other = droplet["do"].add_droplet()
    r = api.call("POST", "/api/worker/credentials", {"droplet_id": other["id"]},
                 headers={"Authorization": f"Droplet {droplet['secret']}"})  # fmt: skip
    assert r.status_code == 401
    r = api.call("POST", "/api/worker/credentials", {"droplet_id": droplet["id"]},
                 headers={"Authorization": f"Droplet {droplet['secret']}"})  # fmt: skip
    assert r.status_code == 200 and set(r.data["credentials"]) == {
        "access_key_id", "secret_access_key", "session_token", "expiration"}  # fmt: skip
