"""`make run`: the whole encoder on one machine, with no cloud account.

Starts moto's server (a real AWS-compatible HTTP endpoint) on loopback,
provisions it with the same code a deployed stage uses, restores the state saved
by the last run (`ops/local_state.py`), serves the Chalice app with its authorizer
on 127.0.0.1:$PORT, runs the event pump and a supervised long-queue worker.

It owns its processes: each child dies with it even when it is SIGKILLed
(PR_SET_PDEATHSIG), a worker that dies is restarted with back-off, and SIGINT or
SIGTERM stops everything in seconds, handing running jobs back to their queues
and saving the state.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chalicelib import host, logs
from chalicelib.config import local_settings

ROOT = Path(__file__).resolve().parent.parent
STAGE = "local"
STOP_SECONDS = 8  # handlers and workers get this long to hand their jobs back
# Then the state is saved (seconds: bodies are on disk already, see MIRROR_SECONDS) and
# the AWS endpoint killed: SIGTERM to exit stays within 15 s.
MIRROR_SECONDS = 3  # new S3 objects are copied to disk this soon after they are written
log = logging.getLogger("openencoder.local")


def state_dir() -> Path:
    return Path(local_settings().state_dir or ROOT / ".local")


_ports: Iterator[int] | None = None  # this process's own block of ports, once one is set
_block_size = 0


def use_ports(first: int, count: int) -> None:
    """Hand out ports from `first` to `first + count - 1` only (a test worker's own block).

    Stacks started at once by parallel test workers then never pick the same port, nor one
    the kernel has just given a client socket (the block lies below the ephemeral range)."""
    global _ports, _block_size
    _ports, _block_size = itertools.cycle(range(first, first + count)), count


def free_port() -> int:
    if _ports is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    # In turn, so two calls before either server binds get two different ports.
    for _ in range(_block_size):
        port = next(_ports)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in this process's block of {_block_size}")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers bind: a socket in TIME_WAIT doesn't count, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Which process listens on `port`, from /proc (Linux); a hint elsewhere."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                return f"pid {proc.name} ({command.decode(errors='replace').strip()[:160]})"
    return f"another process (see `ss -ltnp` or `lsof -i :{port}`)"


def wait_for_http(url: str, deadline_seconds: float = 30, process: Any = None) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 - loopback http only
            return
        except urllib.error.HTTPError:
            return  # it answers (health may say 503 "degraded" while the stack warms up)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {deadline_seconds} s") from None
            time.sleep(0.1)


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """A child in its own process group (signalled as a whole) that dies with this thread."""
    return subprocess.Popen(argv, cwd=ROOT, start_new_session=True,
                            preexec_fn=host.die_with_parent, **kwargs)  # fmt: skip


def stop_process(process: subprocess.Popen, deadline: float) -> None:
    """SIGTERM its group, SIGKILL it at `deadline`; returns once it has exited."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in time: killed", process.args)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Supervised:
    """A child kept running, as systemd's Restart=always does on a droplet.

    It is restarted with exponential back-off when it exits; a run that lasted a
    minute resets the back-off. The thread that starts the child waits for it, so
    the child's parent-death signal fires only if the stack itself dies.
    """

    MIN_BACKOFF, MAX_BACKOFF, STABLE_SECONDS = 1.0, 30.0, 60.0

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._keep_running, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def _keep_running(self) -> None:
        backoff = self.MIN_BACKOFF
        while True:
            with self._lock:
                if self.stopping.is_set():
                    return
                self.process = spawn(self.argv)
            self._started.set()
            began = time.monotonic()
            code = self.process.wait()
            if self.stopping.is_set():
                return
            if time.monotonic() - began > self.STABLE_SECONDS:
                backoff = self.MIN_BACKOFF
            self.restarts += 1
            log.warning("%s exited with %s; restarting it in %.0f s", self.name, code, backoff,
                        extra={"exit_code": code, "restarts": self.restarts})  # fmt: skip
            if self.stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self.MAX_BACKOFF)

    def stop(self) -> None:
        """Ask it to stop (SIGTERM to its group); `wait` for it."""
        with self._lock:
            self.stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        process = self.process
        if process is not None:
            stop_process(process, deadline)
        self._thread.join(max(0.1, deadline - time.monotonic()))


def local_environment(aws_port: int, endpoint: str | None = None) -> dict[str, str]:
    """Environment of the local stage; credentials are throwaway values moto accepts."""
    return {
        "AWS_ENDPOINT_URL": endpoint or f"http://127.0.0.1:{aws_port}",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": "local" + secrets.token_hex(6),
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20),
        "OE_STAGE": STAGE,
        "OE_REGISTRATION_OPEN": os.environ.get("OE_REGISTRATION_OPEN", "true"),
        "OE_BCRYPT_ROUNDS": os.environ.get("OE_BCRYPT_ROUNDS", "12"),
        "OE_SCRATCH_DIR": os.environ.get("OE_SCRATCH_DIR", str(state_dir() / "scratch")),
        # Webhook receivers on this machine (http://127.0.0.1:...) are allowed locally only.
        "OE_WEBHOOK_ALLOW_LOOPBACK": os.environ.get("OE_WEBHOOK_ALLOW_LOOPBACK", "true"),
    }


def api_server(app: Any, config: Any, port: int) -> Any:
    """Chalice's local server, answering methods API Gateway has no route for as it does."""
    from chalice import local

    http_log = logging.getLogger("openencoder.local.http")

    class RequestHandler(local.ChaliceRequestHandler):
        # http.server writes a response's headers and its body in two sends; with Nagle on,
        # the body waits for the client's delayed ACK of the headers: 40 ms on every request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            # One line per request is chatter: DEBUG, like werkzeug's request lines.
            http_log.debug(format, *args)

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
    server = local.LocalDevServer(app, config, "127.0.0.1", port, handler_cls=RequestHandler)
    # socketserver listens with a backlog of 5: a burst of clients (API Gateway takes
    # hundreds at once) would be reset. listen() again raises the backlog in place.
    server.server.socket.listen(512)
    return server


class PortTaken(Exception):
    pass


class LocalStack:
    """The running pieces; `start()` returns once the API answers."""

    def __init__(self, *, port: int, aws_port: int, fresh: bool = False) -> None:
        self.port = port
        self.aws_port = aws_port
        self.fresh = fresh
        self.root = state_dir()
        self.state = self.root / "state"
        self.moto: subprocess.Popen | None = None
        self.workers: list[Supervised] = []
        self.server: Any = None
        self.pump: Any = None
        self.facts: dict[str, Any] = {}
        self.notes: list[str] = []  # what the banner says about the state
        self._saver_stop = threading.Event()
        self._save_lock = threading.Lock()
        self._region = "us-east-1"
        # Set once the endpoint holds the whole restored (or new) state: saving before that
        # would replace a good saved state with a part of it.
        self._loaded = False

    # --- start ---------------------------------------------------------------

    def check_ports(self) -> None:
        for what, port in (("API", self.port), ("AWS endpoint", self.aws_port)):
            if not port_is_free(port):
                raise PortTaken(
                    f"port {port} (the {what}) is taken by {port_holder(port)}. Stop that "
                    f"process, or choose another port: PORT=<n> / AWS_PORT=<n> make run"
                )

    def start(self) -> dict[str, Any]:
        self.check_ports()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stack.json").unlink(missing_ok=True)  # a SIGKILLed run's facts are stale
        endpoint = local_settings().aws_endpoint
        log.debug("starting the AWS endpoint (moto) on 127.0.0.1:%s", self.aws_port)
        chatty = logging.getLogger().isEnabledFor(logging.DEBUG)  # OE_LOG_LEVEL=DEBUG
        quiet = {} if chatty else {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        # As on AWS, a browser reaches S3 only as the buckets' own CORS rules allow.
        moto_env = {**os.environ, "MOTO_DISABLE_GLOBAL_CORS": "true"}
        # moto's server with DynamoDB's atomicity (two tasks finishing together count twice).
        self.moto = spawn([sys.executable, "-m", "ops.moto_server", "-H", "127.0.0.1",
                           "-p", str(self.aws_port)], env=moto_env, **quiet)  # fmt: skip
        wait_for_http(f"http://127.0.0.1:{self.aws_port}/moto-api/data.json", process=self.moto)
        os.environ.update(local_environment(self.aws_port, endpoint))
        # The dashboard's page uploads to the AWS endpoint cross-origin, from here.
        os.environ.setdefault(
            "OE_DASHBOARD_ORIGINS", f"http://127.0.0.1:{self.port},http://localhost:{self.port}"
        )
        # Where (fake) droplets fetch their credentials: this stack's own API.
        os.environ.setdefault("OE_API_URL", f"http://127.0.0.1:{self.port}/api")
        # Plans fit their tasks to the invocations that run at once, here the pump's slots.
        os.environ.setdefault("OE_ENCODE_CONCURRENCY", str(local_settings().concurrency))
        # Imported only now: settings are read from the environment set above.
        from chalice.cli.factory import CLIFactory

        from chalicelib.config import settings

        settings.cache_clear()  # read before the stage's environment was set (logging)
        logs.configure()
        from ops import provision
        from ops.pump import EventPump

        s = settings()
        self._region = s.region
        self.provision()
        username, password = provision.ensure_admin(
            os.environ.get("ADMIN_USERNAME") or "admin", os.environ.get("ADMIN_PASSWORD") or None
        )
        from app import app

        config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=STAGE)
        self.server = api_server(app, config, self.port)
        # The server object's own loop: LocalDevServer.serve_forever prints a banner of its own.
        threading.Thread(target=self.server.server.serve_forever, name="api", daemon=True).start()
        # boto3 builds clients on its default session, which is not safe for threads that
        # build them at the same moment: the shared clients exist before handlers run at once.
        from chalicelib.store import queues, storage

        queues.sqs()
        storage.s3()
        local = local_settings()
        self.pump = EventPump(
            app,
            region=s.region,
            stage=STAGE,
            schedule_override=local.schedule_seconds,
            concurrency=local.concurrency,
        )
        self.pump.start()
        worker = Supervised("long-queue worker", [sys.executable, "-m", "chalicelib.fleet.worker"])
        worker.start()
        self.workers.append(worker)
        wait_for_http(f"http://127.0.0.1:{self.port}/api/health")
        if local.save_seconds > 0:
            threading.Thread(target=self._save_every, args=(local.save_seconds,),
                             name="state-saver", daemon=True).start()  # fmt: skip
        self.facts = {
            "api": f"http://127.0.0.1:{self.port}/api",
            "dashboard": f"http://127.0.0.1:{self.port}/dashboard",
            "aws_endpoint": f"http://127.0.0.1:{self.aws_port}",
            "region": s.region,
            "buckets": {"input": s.input_bucket, "output": s.output_bucket},
            "watch_prefix": s.watch_prefix,
            # The password only when this start made the account (a restart cannot know it);
            # the CLI logs in with the admin token, renewed while the stack runs.
            "admin": {"username": username, **({"password": password} if password else {})},
            "pid": os.getpid(),
            "state": str(self.state),
            "concurrency": local.concurrency,
        }
        self._renew_admin_token()
        threading.Thread(target=self._keep_admin_token, args=(s.token_ttl_seconds,),
                         name="admin-token", daemon=True).start()  # fmt: skip
        return self.facts

    def provision(self) -> None:
        """Provision, restoring the saved state between creating resources and seeding them."""
        from ops import local_state, provision

        if self.fresh and self.state.exists():
            previous = self.root / "state.previous"
            shutil.rmtree(previous, ignore_errors=True)
            self.state.rename(previous)
            self.notes.append(f"started empty (FRESH); the previous state is in {previous}")
        manifest = None
        try:
            manifest = local_state.read_manifest(self.state)
        except local_state.Incompatible as exc:
            self._set_aside(str(exc))

        def restore() -> None:
            if manifest is None:
                return
            try:
                local_state.check(manifest, region=self._region)
            except local_state.Incompatible as exc:
                self._set_aside(str(exc))
                return
            counts = local_state.restore(self.state, manifest, region=self._region)
            self.notes.append(f"restored from {self.state} (saved {manifest['saved']}): "
                              f"{counts.describe()}")  # fmt: skip

        kwargs: dict[str, Any] = {
            "stage": STAGE,
            "do_token": os.environ.get("DIGITALOCEAN_TOKEN") or None,
            "log": lambda message: log.debug(message),
        }
        try:
            provision.provision(after_resources=restore, **kwargs)
        except local_state.LoadFailed as exc:
            # Part of the state went in: start over on an empty endpoint, never half-loaded.
            self.notes.clear()
            self._set_aside(f"restoring it failed part-way ({exc})")
            # moto's documented reset, on loopback.
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{self.aws_port}/moto-api/reset",
                                       method="POST"), timeout=30).read()  # fmt: skip
            from chalicelib.store import queues

            queues.queue_url.cache_clear()
            provision.provision(**kwargs)
        if not self.notes:
            self.notes.append(f"new; saved to {self.state} at stop")
        self._loaded = True

    def _set_aside(self, why: str) -> None:
        from ops import local_state

        aside = local_state.set_aside(self.state, why)
        self.notes.append(f"the saved state could not be restored: {why}. It was moved to "
                          f"{aside}; starting empty")  # fmt: skip
        log.warning("saved state set aside: %s", why, extra={"moved_to": str(aside)})

    def _renew_admin_token(self) -> None:
        """A fresh admin token, signed with the stack's own key, into stack.json."""
        from chalicelib.accounts import auth, users
        from chalicelib.store.models import rfc3339

        token, expires = auth.issue_token(users.get_user(self.facts["admin"]["username"]))
        self.facts["admin_token"] = {"token": token, "expire": rfc3339(expires)}
        self._write_facts()

    def _keep_admin_token(self, ttl_seconds: int) -> None:
        # Renewed at a third of its life, so a reader always finds one with most of it left.
        while not self._saver_stop.wait(max(10, ttl_seconds // 3)):
            try:
                self._renew_admin_token()
            except Exception:
                log.exception("renewing the admin token in stack.json failed; will try again")

    def _write_facts(self) -> None:
        path, partial = self.root / "stack.json", self.root / "stack.json.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.facts, handle, indent=2)
        os.chmod(partial, 0o600)
        os.replace(partial, path)  # readers never see half a file

    # --- state ---------------------------------------------------------------

    def save(self, *, include_queues: bool, should_stop: Any = None) -> None:
        from ops import local_state

        with self._save_lock:
            began = time.monotonic()
            counts = local_state.save(self.state, region=self._region,
                                      include_queues=include_queues,
                                      should_stop=should_stop or (lambda: False))  # fmt: skip
            disk = local_state.size_on_disk(self.state)
            log.info("state saved to %s in %.1f s: %s; %.1f MB on disk", self.state,
                     time.monotonic() - began, counts.describe(), disk / 1e6)  # fmt: skip

    def _save_every(self, seconds: int) -> None:
        # Between saves only queue messages are left out (reading them would disturb the
        # consumers); after a SIGKILL the reconcile re-sends jobs that have none. New
        # objects are mirrored to disk every few seconds, so that no save, and above all
        # not the one at stop, reads a job's hundreds of MB through the endpoint at once.
        # Both give up at once when the stack stops (the stop saves on its own).
        from ops import local_state

        stopping = self._saver_stop.is_set
        next_save = time.monotonic() + seconds
        while not self._saver_stop.wait(min(MIRROR_SECONDS, seconds)):
            try:
                if time.monotonic() >= next_save:
                    self.save(include_queues=False, should_stop=stopping)
                    next_save = time.monotonic() + seconds
                else:
                    with self._save_lock:
                        local_state.mirror(self.state, region=self._region, should_stop=stopping)
            except local_state.Cancelled:
                return
            except Exception:
                log.exception("saving the state failed; will try again")

    # --- stop ----------------------------------------------------------------

    def stop(self) -> None:
        deadline = time.monotonic() + STOP_SECONDS
        self._saver_stop.set()
        if self.server is not None:
            self.server.server.shutdown()
            self.server.server.server_close()
        # Workers and handlers hand their jobs back at the same time, within the deadline.
        host.stopping.set()
        for worker in self.workers:
            worker.stop()
        stopped = True
        if self.pump is not None:
            stopped = self.pump.stop(timeout=max(0.1, deadline - time.monotonic()))
        log.debug("handlers stopped (%s)", "all" if stopped else "not all")
        for worker in self.workers:
            worker.wait(deadline)
        log.debug("workers stopped")
        if self._loaded and self.moto is not None and self.moto.poll() is None:
            try:
                # Nothing reads the queues now: their messages are saved too.
                self.save(include_queues=stopped)
            except Exception:
                log.exception("saving the state failed: this run's changes are not kept")
        if self.moto is not None:
            # Its state is saved (or can't be): nothing graceful is left to wait for.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.moto.pid, signal.SIGKILL)
            self.moto.wait()
        (self.root / "stack.json").unlink(missing_ok=True)  # it holds the admin password


@contextlib.contextmanager
def running(
    state: Path, output: Any = subprocess.DEVNULL, args: tuple[str, ...] = (), **env: str
) -> Iterator[tuple[Any, dict]]:
    """`python -m ops.local_stack` in a child process (for tests and benches): (process, facts).

    `state` is the stack's OE_STATE_DIR; start it again on the same folder to restore.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OE_"))}
    child_env.update(PORT=str(free_port()), AWS_PORT=str(free_port()), OE_STATE_DIR=str(state))
    child_env.update(PYTHONUNBUFFERED="1", **env)
    (state / "stack.json").unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "ops.local_stack", *args], cwd=ROOT,
                               env=child_env, stdout=output, stderr=subprocess.STDOUT,
                               preexec_fn=host.die_with_parent)  # fmt: skip
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
            process.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Open Encoder locally (make run).")
    parser.add_argument(
        "--fresh", action="store_true", help="start empty; the saved state goes to state.previous"
    )
    options = parser.parse_args(argv)
    logs.configure()
    port = int(os.environ.get("PORT", "8000"))
    aws_port = int(os.environ.get("AWS_PORT") or free_port())
    stack = LocalStack(port=port, aws_port=aws_port, fresh=options.fresh)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stack.check_ports()
    except PortTaken as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        facts = stack.start()
        admin = facts["admin"]
        password = admin.get("password") or (
            "(unchanged: kept from the saved state; the CLI uses the token in stack.json)"
        )
        print(
            "\nOpen Encoder is running.\n"
            f"  API:           {facts['api']}\n"
            f"  Dashboard:     {facts['dashboard']}  (log in as the admin below)\n"
            f"  AWS endpoint:  {facts['aws_endpoint']}  (region {facts['region']})\n"
            f"  buckets:       input {facts['buckets']['input']}, "
            f"output {facts['buckets']['output']}\n"
            f"  drop files at: s3://{facts['buckets']['input']}/{facts['watch_prefix']}\n"
            f"  admin login:   {admin['username']} / {password}\n"
            f"  state:         {'; '.join(stack.notes)}\n"
            f"  these facts:   {stack.root / 'stack.json'} (mode 0600, removed at stop)\n"
            "Press Ctrl-C to stop. The log follows.\n",
            flush=True,
        )
        while not stop.wait(1):
            if stack.moto is not None and stack.moto.poll() is not None:
                log.error("the AWS endpoint exited (%s): stopping", stack.moto.returncode)
                return 1
    finally:
        began = time.monotonic()
        log.info("stopping: running jobs are handed back to their queues")
        stack.stop()
        log.info("stopped in %.1f s", time.monotonic() - began)
    return 0


if __name__ == "__main__":
    status = main()
    # Everything is stopped and saved: skip the interpreter's teardown of thousands of
    # objects (seconds on a loaded machine), which would only delay the exit.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
