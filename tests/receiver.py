"""A loopback HTTP receiver for webhook tests: records every request, answers as scripted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """`answers[path]` is a list of status codes used in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: dict[str, list[int]] = {}
        self.redirect_to: str = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = [r for r in receiver.requests if r.path == self.path]
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                script = receiver.answers.get(self.path, [200])
                status = script[min(len(seen), len(script) - 1)]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]
