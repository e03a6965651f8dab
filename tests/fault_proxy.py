"""A tiny HTTP proxy in front of moto's server that fails chosen AWS requests.

The local stack is pointed at it (OE_LOCAL_AWS_ENDPOINT), so every process of the
stack talks AWS through it. A failure is decided per botocore invocation (the
`amz-sdk-invocation-id` header is the same for a call and all its retries), so
"fail one TransactWriteItems" fails that call through botocore's retries and leaves
every other call alone. A failed request is never forwarded: nothing is written.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        # Decides, per (target, body), whether to start failing an invocation.
        self.choose: Callable[[str, bytes], bool] | None = None
        self.failing: set[str] = set()
        self.failed_requests = 0
        # The emulator's own answers per invocation: the last status, and 5xx bodies seen.
        self.last_status: dict[str, tuple[str, bytes, int]] = {}
        self.upstream_errors: list[tuple[str, int, bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    def fail_once(self, target: str, body_contains: bytes) -> None:
        """Fail the next call of `target` whose body has `body_contains` (all its retries)."""
        chosen = threading.Event()

        def choose(request_target: str, body: bytes) -> bool:
            if request_target != target or body_contains not in body or chosen.is_set():
                return False
            chosen.set()
            return True

        self.choose = choose

    def start(self, port: int = 0) -> int:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                invocation = self.headers.get("amz-sdk-invocation-id") or ""
                with proxy.lock:
                    fresh = invocation and invocation not in proxy.failing and proxy.choose
                    if fresh and proxy.choose(target, body):
                        proxy.failing.add(invocation)
                    fail = invocation in proxy.failing
                    if fail:
                        proxy.failed_requests += 1
                if fail:
                    payload = json.dumps({"__type": "com.amazon.coral.service#InternalServerError",
                                          "message": "injected by the fault proxy"}).encode()  # fmt: skip
                    self.send_response(500)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    with proxy.lock:
                        if invocation:
                            proxy.last_status[invocation] = (target, body[:4000], answer.status)
                        if answer.status >= 500:
                            proxy.upstream_errors.append((target, answer.status, data[:300]))
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in _HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _relay

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512

        self.server = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def gave_up(self, target: str, body_contains: bytes) -> int:
        """Calls of `target` (matching) whose last try the emulator itself answered with a 5xx."""
        return sum(
            1
            for t, body, status in self.last_status.values()
            if t == target and body_contains in body and status >= 500
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
