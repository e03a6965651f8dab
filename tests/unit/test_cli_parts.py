"""Pieces of the CLI that need no stack: naming outputs and dests, riding out outages."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath

import pytest

from openencoder_cli import download, watch
from openencoder_cli.client import Api, Unreachable
from openencoder_cli.download import safe_name
from openencoder_cli.encode import dest_for, labels_for
from openencoder_cli.transfer import TransferFailed
from ops.local_stack import free_port


def test_outputs_are_saved_under_their_name_and_never_outside_the_folder():
    assert safe_name("hls/720p/seg1.m4s") == PurePosixPath("hls/720p/seg1.m4s")
    assert safe_name("../../etc/passwd") == PurePosixPath("etc/passwd")
    assert safe_name("/abs/./x.mp4") == PurePosixPath("abs/x.mp4")
    assert safe_name("..", fallback="x.mp4") == PurePosixPath("x.mp4")


class FlakyStorage:
    """A loopback HTTP server whose object's body is cut short the first `cuts` times."""

    def __init__(self, body: bytes, cuts: int) -> None:
        storage = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                short = storage.cuts > 0
                storage.cuts -= 1
                self.wfile.write(body[: len(body) // 3] if short else body)
                self.wfile.flush()
                self.close_connection = True

        self.cuts = cuts
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/seg.m4s"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("cuts, whole", [(download.ATTEMPTS - 1, True), (download.ATTEMPTS, False)])
def test_a_cut_download_never_takes_the_real_name(tmp_path, cuts, whole):
    body = bytes(range(256)) * 4000
    storage = FlakyStorage(body, cuts)
    remote = download.Remote(PurePosixPath("360p/seg.m4s"), len(body), "etag", storage.url)
    target = tmp_path / "360p" / "seg.m4s"
    try:
        with download.download_bar() as bars:
            task = bars.add_task("test", total=len(body), files="")
            fetcher = download.Fetcher(tmp_path, bars, task)
            if whole:
                assert fetcher.fetch(remote) == target and target.read_bytes() == body
                assert bars.tasks[0].completed == len(body)  # a cut attempt's bytes taken back
            else:
                with pytest.raises(TransferFailed, match=r"360p/seg\.m4s"):
                    fetcher.fetch(remote)
                assert not target.exists()
    finally:
        storage.close()
    assert [p.name for p in (tmp_path / "360p").iterdir()] == (["seg.m4s"] if whole else [])


class ExpiringStorage:
    """Serves one body at /fresh; every other path is refused, as an expired link is."""

    def __init__(self, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fresh = self.path == "/fresh"
                self.send_response(200 if fresh else 403)
                self.send_header("Content-Length", str(len(body) if fresh else 0))
                self.end_headers()
                if fresh:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"


class ListingApi:
    """The files route: the first listing's links have expired, the next ones are fresh."""

    def __init__(self, base: str, size: int) -> None:
        self.base, self.size, self.listings = base, size, 0

    def get(self, path: str, params: dict) -> dict:
        assert path == "/jobs/7/files"
        self.listings += 1
        url = f"{self.base}/{'expired' if self.listings == 1 else 'fresh'}"
        item = {"name": "360p/seg.m4s", "key": "d/360p/seg.m4s", "size": self.size,
                "etag": "e", "url": url}  # fmt: skip
        return {"count": 1, "items": [item], "next": None}


def test_links_that_expire_during_a_download_are_listed_again_once(tmp_path):
    body = b"segment" * 1000
    storage = ExpiringStorage(body)
    api = ListingApi(storage.base, len(body))
    try:
        saved = download.save(api, {"id": 7}, tmp_path)  # type: ignore[arg-type]
    finally:
        storage.server.shutdown()
        storage.server.server_close()
    assert api.listings == 2 and (tmp_path / "360p" / "seg.m4s").read_bytes() == body
    assert saved.fetched == [tmp_path / "360p" / "seg.m4s"] and saved.kept == []


def test_a_file_already_there_with_its_size_and_etag_is_kept(tmp_path):
    data = b"segment bytes"
    (tmp_path / "a.m4s").write_bytes(data)
    ledger = download.Ledger(tmp_path)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    same = download.Remote(PurePosixPath("a.m4s"), len(data), md5, "http://unused")
    assert ledger.has(same, tmp_path / "a.m4s")  # its MD5 is a single-part ETag
    multipart = download.Remote(PurePosixPath("a.m4s"), len(data), "abc-2", "http://unused")
    assert not ledger.has(multipart, tmp_path / "a.m4s")
    ledger.note(multipart, tmp_path / "a.m4s")  # as a download notes what it saved
    assert download.Ledger(tmp_path).has(multipart, tmp_path / "a.m4s")
    (tmp_path / "a.m4s").write_bytes(b"other, longer bytes")
    assert not download.Ledger(tmp_path).has(multipart, tmp_path / "a.m4s")


def test_several_files_get_a_folder_each_under_one_dest():
    one = dest_for(Path("a b.mov"), "0abc", None, several=False)
    assert one == "encodes/a-b-0abc/"
    assert dest_for(Path("a.mov"), "0abc", "s3:///shows/ep1", several=False) == "s3:///shows/ep1/"
    assert dest_for(Path("a.mov"), "0abc", "s3:///shows/ep1/", several=True) == (
        "s3:///shows/ep1/a-0abc/"
    )
    assert labels_for([Path("x/a.mp4"), Path("y/a.mp4"), Path("b.mp4")]) == [
        "a.mp4 (1)", "a.mp4 (2)", "b.mp4"
    ]  # fmt: skip


def test_a_watch_rides_out_an_unreachable_api_then_gives_up(monkeypatch):
    poller = watch.Poller(Api(f"http://127.0.0.1:{free_port()}/api", "token"))
    assert poller.view(1) is None  # connection refused: a blip, for now
    monkeypatch.setattr(watch, "OUTAGE_SECONDS", 0.0)
    with pytest.raises(Unreachable):
        poller.view(1)


def test_a_chunk_is_done_when_every_rendition_of_it_is():
    tasks = [
        {"kind": "encode", "chunk": 0, "rendition": "360p", "status": "done"},
        {"kind": "encode", "chunk": 0, "rendition": "720p", "status": "done"},
        {"kind": "encode", "chunk": 1, "rendition": "360p", "status": "done"},
        {"kind": "encode", "chunk": 1, "rendition": "720p", "status": "running"},
        {"kind": "audio", "chunk": None, "status": "done"},
        {"kind": "assemble", "chunk": None, "status": "queued"},
    ]
    assert watch.chunk_counts(tasks) == (1, 2)
    assert watch.chunk_counts([{"kind": "audio", "chunk": None, "status": "done"}]) is None
