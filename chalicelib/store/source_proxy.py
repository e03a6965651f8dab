"""A job's source served to ffmpeg on loopback, one byte range at a time (ranged reads).

Why a proxy rather than handing ffmpeg a presigned S3 URL (DESIGN.md, "Trust model"):
- the presigned URL is a bearer secret while it is valid; given to ffmpeg it would sit in
  its argv (readable by every process on the host through /proc) and in its error lines,
  which the job keeps as its log tail. Here no URL to S3 is ever made: boto3 reads the
  ranges with the host's own credentials, and ffmpeg sees only a loopback URL with a
  random one-time path that names this one object and dies with the context;
- ffmpeg's input needs `http,tcp` only (no TLS stack, no DNS), and only to 127.0.0.1;
- every range is a bounded GET (`Range` + `If-Match` on the ETag planned with), so a
  source overwritten mid-job fails the read instead of mixing two files, transient S3
  errors are retried by boto3 per window, and what was read from S3 is counted exactly.

The server answers GET and HEAD of its one path (206 with Content-Range for a range, as
ffmpeg's http protocol expects to seek), 404 to anything else, and logs nothing (the path
is the secret). It imports nothing of AWS itself: `read` is given (S3, or a local file).
"""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Read = Callable[[int, int], bytes]  # first byte, last byte (inclusive) → those bytes
FIRST_WINDOW_BYTES = 64 * 1024  # a probe's or a seek's small reads stay small
MAX_WINDOW_BYTES = 8 * 1024 * 1024  # a long read doubles up to this per S3 GET
SEND_BUFFER_BYTES = 256 * 1024
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class SourceProxy:
    """`with SourceProxy(size, read) as proxy:` ffmpeg may read `proxy.url` until exit."""

    def __init__(self, size: int, read: Read) -> None:
        self.size = size
        self._read = read
        self._token = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.bytes_read = 0  # fetched through `read` (from S3), in all
        self.requests = 0  # ranges ffmpeg asked for
        self.failure: BaseException | None = None  # the first error `read` raised
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy serves only inside its `with`"
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self._token}"

    def redact(self, text: str) -> str:
        """ffmpeg's lines name the URL: the job's log tail keeps a placeholder instead."""
        return text.replace(self.url, "source") if self._server is not None else text

    def __enter__(self) -> SourceProxy:
        server = _QuietServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True  # a connection ffmpeg left open never holds the host
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="source-proxy",
                                        kwargs={"poll_interval": 0.2}, daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._closed.set()
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- what the handler calls ------------------------------------------------------

    def _allowed(self, path: str) -> bool:
        return hmac.compare_digest(path.encode(), f"/{self._token}".encode())

    def _stream(self, first: int, last: int, write: Callable[[bytes], Any]) -> None:
        """Bytes first..last to `write`, one S3 GET per window.

        Windows start small and double while the reader keeps up (up to 8 MiB, where S3's
        latency per GET no longer limits the rate): ffmpeg asks for everything from an
        offset but often needs only the start (a probe, a seek, a chunk's end), and closes
        the connection, so what was fetched and left unread is about one window.
        """
        window, at = FIRST_WINDOW_BYTES, first
        while at <= last and not self._closed.is_set():
            end = min(last, at + window - 1)
            try:
                data = self._read(at, end)
            except BaseException as exc:
                with self._lock:
                    self.failure = self.failure or exc
                raise
            with self._lock:
                self.bytes_read += len(data)
            if len(data) != end - at + 1:
                raise OSError(f"read {len(data)} bytes of {end - at + 1} at {at}")
            write(data)
            at = end + 1
            window = min(MAX_WINDOW_BYTES, window * 2)


class _QuietServer(ThreadingHTTPServer):
    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # A bounded send buffer: the proxy runs little ahead of what ffmpeg has read. Not
        # below loopback's 64 KiB segment: at 32 KiB each send waited on an ACK, and ffmpeg
        # read at ~3 MB/s (a 2 s seek-and-decode took 1.4 s instead of 0.2 s).
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A reader's dropped connection is no error; a failed read is kept as `failure`."""


def _handler(proxy: SourceProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "openencoder-source"
        disable_nagle_algorithm = True  # headers and body are two sends: no 40 ms ACK wait

        def log_message(self, format: str, *args: Any) -> None:
            """Nothing is logged: the request line holds the proxy's secret path."""

        def handle(self) -> None:
            # ffmpeg closed its connection (it seeked, or it is done): nothing to report.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                super().handle()

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            if not proxy._allowed(self.path):
                self.send_error(404)
                return
            size = proxy.size
            first, last, status = 0, size - 1, 200
            if wanted := self.headers.get("Range"):
                match = _RANGE.fullmatch(wanted.strip())
                if not match or int(match.group(1)) >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                first = int(match.group(1))
                last = min(size - 1, int(match.group(2))) if match.group(2) else size - 1
                status = 206
            with proxy._lock:
                proxy.requests += 1
            self.send_response(status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(last - first + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if not body or last < first:
                return
            try:
                proxy._stream(first, last, self.wfile.write)
            except (BrokenPipeError, ConnectionResetError):
                pass  # ffmpeg seeked elsewhere or has what it needs: the rest is not read
            except Exception:  # noqa: BLE001 - kept as proxy.failure; ffmpeg sees a short read
                self.close_connection = True

    return Handler
