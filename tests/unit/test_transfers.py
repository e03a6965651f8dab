"""Publishing many files at once: bounded, manifests after what they name, failures raised."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.store import storage, transfers


def test_playlists_go_after_their_segments_and_the_master_and_mpd_last():
    names = ["master.m3u8", "manifest.mpd", "720p/index.m3u8", "720p/seg_00000.m4s",
             "720p/init.mp4", "720p.mp4", "thumbnails/sprite.vtt", "thumbnails/sprite.jpg",
             "quality/720p.json"]  # fmt: skip
    tiers = [[location.key.removeprefix("d/") for location in t]
             for t in transfers.in_tiers((n, storage.S3Location("b", f"d/{n}")) for n in names)]  # fmt: skip
    assert tiers == [
        ["720p/seg_00000.m4s", "720p/init.mp4", "720p.mp4", "thumbnails/sprite.jpg",
         "quality/720p.json"],
        ["720p/index.m3u8", "thumbnails/sprite.vtt"],
        ["master.m3u8", "manifest.mpd"],
    ]  # fmt: skip


def test_no_more_than_the_bound_are_in_flight_at_once():
    lock, flying, most = threading.Lock(), [0], [0]

    def send(_item: int) -> None:
        with lock:
            flying[0] += 1
            most[0] = max(most[0], flying[0])
        time.sleep(0.01)
        with lock:
            flying[0] -= 1

    transfers.all_at_once(list(range(40)), send, at_once=4)
    assert most[0] == 4


def test_the_first_failure_is_raised_and_the_rest_never_start():
    started: list[int] = []

    def send(item: int) -> None:
        started.append(item)
        if item == 0:
            raise RuntimeError("S3 said no")
        time.sleep(0.05)

    with pytest.raises(RuntimeError, match="S3 said no"):
        transfers.all_at_once(list(range(100)), send, at_once=2)
    assert len(started) < 100
