"""Pieces of the CLI that need no stack: naming outputs and dests, riding out outages."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from openencoder_cli import watch
from openencoder_cli.client import Api, Unreachable
from openencoder_cli.encode import dest_for, labels_for
from openencoder_cli.outcome import relative_name
from ops.local_stack import free_port


def test_outputs_are_saved_under_their_path_below_the_dest():
    dest = "s3://openencoder-local-output/encodes/clip-0abc/"
    assert relative_name("encodes/clip-0abc/video.mp4", dest) == PurePosixPath("video.mp4")
    assert relative_name("encodes/clip-0abc/hls/720p/seg1.m4s", dest) == PurePosixPath(
        "hls/720p/seg1.m4s"
    )
    # Never outside the folder asked for, whatever the key says.
    assert relative_name("elsewhere/../../etc/passwd", dest) == PurePosixPath("passwd")
    assert relative_name("encodes/clip-0abc/../../x.mp4", dest) == PurePosixPath("x.mp4")


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
