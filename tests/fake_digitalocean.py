"""A fake DigitalOcean API on loopback: the endpoints Open Encoder uses, with pagination,
error answers and a record of the requests it got.

Point python-digitalocean at it with DIGITALOCEAN_END_POINT. Run it by hand to
watch machines come and go with `make run`:

    python -m tests.fake_digitalocean --port 9100 --token local-do-token
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

REGIONS = [
    {
        "name": "New York 3",
        "slug": "nyc3",
        "sizes": ["s-1vcpu-1gb", "c-2", "c-4"],
        "available": True,
    },
    {"name": "San Francisco 3", "slug": "sfo3", "sizes": ["s-1vcpu-1gb", "c-2"], "available": True},
    {"name": "San Francisco 1", "slug": "sfo1", "sizes": [], "available": False},
]
SIZES = [
    {"slug": "s-1vcpu-1gb", "available": True, "price_monthly": 6.0, "price_hourly": 0.00893},
    {"slug": "c-2", "available": True, "price_monthly": 42.0, "price_hourly": 0.0625},
    {"slug": "c-4", "available": True, "price_monthly": 84.0, "price_hourly": 0.125},
]
STAGE_TAG = "openencoder-local"  # the tests' stage (OE_STAGE=local)
_ERRORS = {
    401: ("unauthorized", "Unable to authenticate you"),
    404: ("not_found", "The resource you were accessing could not be found."),
    422: ("unprocessable_entity", "Invalid request"),
    429: ("too_many_requests", "API Rate limit exceeded."),
    500: ("server_error", "Server Error"),
}


class FakeDigitalOcean:
    def __init__(self, token: str, page_size: int = 20) -> None:
        self.token = token
        self.page_size = page_size
        self.droplets: dict[int, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.failures: list[int] = []
        self.delay_seconds = 0.0
        self.lock = threading.Lock()
        self._ids = itertools.count(1000)
        self.server: ThreadingHTTPServer | None = None

    # --- test controls -------------------------------------------------------

    def answer_slowly(self, seconds: float) -> None:
        """Hold every answer this long, to exercise the client's timeout."""
        self.delay_seconds = seconds

    def fail_next(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.failures += [status] * times

    def add_droplet(self, name: str = "openencoder-worker", tags: list[str] | None = None,
                    size: str = "c-2", region: str = "nyc3") -> dict[str, Any]:  # fmt: skip
        droplet_id = next(self._ids)
        region_doc = next(r for r in REGIONS if r["slug"] == region)
        droplet = {
            "id": droplet_id,
            "name": name,
            "status": "active",
            "size_slug": size,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": {"name": region_doc["name"], "slug": region},
            "tags": tags if tags is not None else ["openencoder", STAGE_TAG, "openencoder-worker"],
            "networks": {"v4": [], "v6": []},
            "features": [],
            "image": {"slug": "ubuntu-24-04-x64"},
            "user_data": None,
        }
        self.droplets[droplet_id] = droplet
        return droplet

    # --- serving ---------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                fake.handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2/"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        with self.lock:
            self.requests.append(
                {"method": request.command, "path": url.path, "query": query, "body": body}
            )
            failure = self.failures.pop(0) if self.failures else None
        if self.delay_seconds:
            threading.Event().wait(self.delay_seconds)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(request, 401)
        if failure:
            return self._error(request, failure)
        parts = [p for p in url.path.split("/") if p][1:]  # drop "v2"
        base = f"http://{request.headers.get('Host')}/v2"
        with self.lock:
            status, answer = self.route(request.command, parts, query, body, base)
        if status >= 400:
            return self._error(request, status)
        self._send(request, status, answer)

    def route(
        self, method: str, parts: list[str], query: dict, body: dict, base: str
    ) -> tuple[int, Any]:
        if parts == ["regions"] and method == "GET":
            return 200, self._page("regions", REGIONS, query, f"{base}/regions")
        if parts == ["sizes"] and method == "GET":
            return 200, self._page("sizes", SIZES, query, f"{base}/sizes")
        if parts == ["droplets"] and method == "GET":
            tag = query.get("tag_name")
            found = [d for d in self.droplets.values() if not tag or tag in d["tags"]]
            return 200, self._page("droplets", found, query, f"{base}/droplets", tag)
        if parts == ["droplets"] and method == "POST":
            if body.get("region") not in {r["slug"] for r in REGIONS} or not body.get("names"):
                return 422, None
            made = []
            for name in body["names"]:
                droplet = self.add_droplet(
                    name, body.get("tags") or [], body["size"], body["region"]
                )
                droplet["status"] = "new"
                droplet["user_data"] = body.get("user_data")
                made.append(droplet)
            return 202, {
                "droplets": made,
                "links": {"actions": [{"id": 1, "rel": "multiple_create"}]},
            }
        if parts == ["droplets"] and method == "DELETE" and query.get("tag_name"):
            for droplet_id in [
                i for i, d in self.droplets.items() if query["tag_name"] in d["tags"]
            ]:
                del self.droplets[droplet_id]
            return 204, None
        if len(parts) == 2 and parts[0] == "droplets" and parts[1].isdigit():
            droplet_id = int(parts[1])
            if droplet_id not in self.droplets:
                return 404, None
            if method == "GET":
                return 200, {"droplet": self.droplets[droplet_id]}
            if method == "DELETE":
                del self.droplets[droplet_id]
                return 204, None
        return 404, None

    def _page(self, key: str, items: list, query: dict, url: str, tag: str | None = None) -> dict:
        per_page = min(int(query.get("per_page", 20)), self.page_size)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        links: dict[str, Any] = {}
        if page * per_page < len(items):
            extra = f"&tag_name={tag}" if tag else ""
            links = {"pages": {"next": f"{url}?page={page + 1}&per_page={per_page}{extra}"}}
        return {key: chunk, "links": links, "meta": {"total": len(items)}}

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, answer: Any) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _error(self, request: BaseHTTPRequestHandler, status: int) -> None:
        error_id, message = _ERRORS[status]
        self._send(request, status, {"id": error_id, "message": message})


class FakeMetadata:
    """DigitalOcean's droplet metadata service (169.254.169.254/metadata/v1) for one droplet.

    Serves `GET /metadata/v1/id` as plain text, as the real one does; `droplet_id`
    may change between requests (a test moves the "worker" to another droplet).
    """

    def __init__(self, droplet_id: int | None) -> None:
        self.droplet_id = droplet_id
        self.requests: list[str] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.path.rstrip("/") == "/metadata/v1/id" and fake.droplet_id is not None:
                    data, status = str(fake.droplet_id).encode(), 200
                else:
                    data, status = b"not found", 404
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/metadata/v1"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake DigitalOcean API on loopback")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    fake = FakeDigitalOcean(args.token)
    print(f"fake DigitalOcean on {fake.start(args.port)} (token from --token)", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
