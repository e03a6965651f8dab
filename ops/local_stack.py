"""`make run`: the whole encoder on one machine, with no cloud account.

Starts moto's server (a real AWS-compatible HTTP endpoint) on loopback,
provisions it with the same code a deployed stage uses, serves the Chalice app
with its authorizer on 127.0.0.1:$PORT, and runs the event pump. Ctrl-C (or
SIGTERM) stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("OE_STATE_DIR") or ROOT / ".local")
STAGE = "local"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, deadline_seconds: float = 30) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 - loopback http only
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {deadline_seconds} s") from None
            time.sleep(0.1)


def start_moto(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # As on AWS, a browser reaches S3 only as the buckets' own CORS rules allow.
        env={**os.environ, "MOTO_DISABLE_GLOBAL_CORS": "true"},
    )
    wait_for_http(f"http://127.0.0.1:{port}/moto-api/data.json")
    return process


def local_environment(aws_port: int) -> dict[str, str]:
    """Environment of the local stage; credentials are throwaway values moto accepts."""
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": "local" + secrets.token_hex(6),
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20),
        "OE_STAGE": STAGE,
        "OE_REGISTRATION_OPEN": os.environ.get("OE_REGISTRATION_OPEN", "true"),
        "OE_BCRYPT_ROUNDS": os.environ.get("OE_BCRYPT_ROUNDS", "12"),
        "OE_SCRATCH_DIR": os.environ.get("OE_SCRATCH_DIR", str(STATE / "scratch")),
        # Webhook receivers on this machine (http://127.0.0.1:...) are allowed locally only.
        "OE_WEBHOOK_ALLOW_LOOPBACK": os.environ.get("OE_WEBHOOK_ALLOW_LOOPBACK", "true"),
    }


def api_server(app: Any, config: Any, port: int) -> Any:
    """Chalice's local server, answering methods API Gateway has no route for as it does."""
    from chalice import local

    class RequestHandler(local.ChaliceRequestHandler):
        def _send_error_response(self, error: Any) -> None:
            # What API Gateway answers itself (no token, unknown route) in the API's
            # JSON shape: the same gateway responses `make deploy` configures.
            from ops.deploy import GATEWAY_RESPONSES

            kind = "UNAUTHORIZED" if error.CODE == 401 else "ACCESS_DENIED"
            if b"Missing Authentication Token" in (error.body or b""):
                kind = "MISSING_AUTHENTICATION_TOKEN"
            status, message = GATEWAY_RESPONSES.get(kind, (error.CODE, "request refused"))
            body = json.dumps({"status": status, "message": message}).encode()
            headers = {**error.headers, "Content-Type": "application/json"}
            self._send_http_response(status, headers, body)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None):
            # http.server answers an unknown method with 501; API Gateway says 405.
            if code == 501:
                code, message = 405, f"method {self.command} not allowed"
            body = json.dumps({"status": code, "message": message or "bad request"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    # As chalice.local.create_local_server does, with our request handler.
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
    app.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(app, config, "127.0.0.1", port, handler_cls=RequestHandler)


class LocalStack:
    """The running pieces; `start()` returns once the API answers."""

    def __init__(self, *, port: int, aws_port: int, quiet: bool = False) -> None:
        self.port = port
        self.aws_port = aws_port
        self.quiet = quiet
        self.processes: list[subprocess.Popen] = []
        self.server: Any = None
        self.pump: Any = None
        self.facts: dict[str, Any] = {}

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def start(self) -> dict[str, Any]:
        self.log(f"starting the AWS endpoint (moto) on 127.0.0.1:{self.aws_port}")
        self.processes.append(start_moto(self.aws_port))
        os.environ.update(local_environment(self.aws_port))
        # The dashboard's page uploads to the AWS endpoint cross-origin, from here.
        os.environ.setdefault(
            "OE_DASHBOARD_ORIGINS", f"http://127.0.0.1:{self.port},http://localhost:{self.port}"
        )
        # Imported only now: settings are read from the environment set above.
        from chalice.cli.factory import CLIFactory

        from chalicelib.config import settings
        from ops import provision
        from ops.pump import EventPump

        provision.provision(
            stage=STAGE,
            do_token=os.environ.get("DIGITALOCEAN_TOKEN") or None,
            # Locally a droplet's "scoped" keys are the throwaway keys moto accepts.
            worker_credentials={
                "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
                "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            },
            log=self.log,
        )
        username, password = provision.ensure_admin(
            os.environ.get("ADMIN_USERNAME") or "admin", os.environ.get("ADMIN_PASSWORD") or None
        )
        from app import app

        config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=STAGE)
        self.server = api_server(app, config, self.port)
        threading.Thread(target=self.server.serve_forever, name="api", daemon=True).start()
        s = settings()
        self.pump = EventPump(
            app,
            region=s.region,
            stage=STAGE,
            schedule_override=int(os.environ.get("OE_SCHEDULE_SECONDS", "0")) or None,
        )
        self.pump.start()
        self.log("starting one long-queue worker")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "chalicelib.worker"], cwd=ROOT, start_new_session=True
            )
        )
        wait_for_http(f"http://127.0.0.1:{self.port}/api/health")
        self.facts = {
            "api": f"http://127.0.0.1:{self.port}/api",
            "dashboard": f"http://127.0.0.1:{self.port}/dashboard",
            "aws_endpoint": f"http://127.0.0.1:{self.aws_port}",
            "region": s.region,
            "buckets": {"input": s.input_bucket, "output": s.output_bucket},
            "watch_prefix": s.watch_prefix,
            "admin": {"username": username, "password": password},
        }
        self._write_facts()
        return self.facts

    def _write_facts(self) -> None:
        STATE.mkdir(exist_ok=True)
        path, partial = STATE / "stack.json", STATE / "stack.json.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.facts, handle, indent=2)
        os.chmod(partial, 0o600)
        os.replace(partial, path)  # readers never see half a file

    def stop(self) -> None:
        if self.pump is not None:
            self.pump.stop()
        if self.server is not None:
            self.server.server.shutdown()
            self.server.server.server_close()
        # Newest first: the worker hands its job back while the AWS endpoint still answers.
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    state: Path, output: Any = subprocess.DEVNULL, **env: str
) -> Iterator[tuple[Any, dict]]:
    """`python -m ops.local_stack` in a child process (for tests and benches): (process, facts)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OE_"))}
    child_env.update(PORT=str(free_port()), AWS_PORT=str(free_port()), OE_STATE_DIR=str(state))
    child_env.update(PYTHONUNBUFFERED="1", **env)
    process = subprocess.Popen([sys.executable, "-m", "ops.local_stack"], cwd=ROOT, env=child_env,
                               stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (state / "stack.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local stack did not start: see its output")
            time.sleep(0.2)
        yield process, json.loads((state / "stack.json").read_text())
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    port = int(os.environ.get("PORT", "8000"))
    aws_port = int(os.environ.get("AWS_PORT") or free_port())
    stack = LocalStack(port=port, aws_port=aws_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        facts = stack.start()
        admin = facts["admin"]
        password = admin["password"] or "(unchanged: the account already existed)"
        print(
            "\nOpen Encoder is running.\n"
            f"  API:           {facts['api']}\n"
            f"  Dashboard:     {facts['dashboard']}  (log in as the admin below)\n"
            f"  AWS endpoint:  {facts['aws_endpoint']}  (region {facts['region']})\n"
            f"  buckets:       input {facts['buckets']['input']}, "
            f"output {facts['buckets']['output']}\n"
            f"  drop files at: s3://{facts['buckets']['input']}/{facts['watch_prefix']}\n"
            f"  admin login:   {admin['username']} / {password}\n"
            f"  these facts:   {STATE / 'stack.json'} (mode 0600)\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        stop.wait()
    finally:
        print("stopping (the worker finishes its queue poll first: a few seconds)...", flush=True)
        stack.stop()
        print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
