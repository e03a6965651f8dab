"""Which way a job's tasks read its source, and the fence around the one network input."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.graph import source_read
from chalicelib.graph.source_read import Located
from chalicelib.media import argv
from chalicelib.media.argv import Loopback
from chalicelib.store.storage import S3Location

URL = "http://127.0.0.1:40123/" + "a" * 32
MP4 = "mov,mp4,m4a,3gp,3g2,mj2,"


def located(size: int = 1 << 30) -> Located:
    return Located(S3Location("in", "src/a.mp4"), size, "etag-1")


def test_a_big_indexed_source_of_a_chunked_plan_is_read_by_range_against_its_etag():
    read = source_read.choose(located(), MP4, graph=True)
    assert read["way"] == "ranged" and read["etag"] == "etag-1" and read["container"] == "mov"
    assert source_read.choose(located(), "matroska,webm,", graph=True)["way"] == "ranged"


@pytest.mark.parametrize("size,container,graph,why", [
    (1 << 30, "mpegts,", True, "mpegts has no index"),
    (1 << 30, "h264,", True, "h264 has no index"),
    (1 << 20, MP4, True, "under OE_RANGED_MIN_BYTES"),
    (1 << 30, MP4, False, "one task reads the whole source"),
])  # fmt: skip
def test_the_download_way_is_kept_where_it_is_cheaper_or_the_only_way(size, container, graph, why):
    read = source_read.choose(located(size), container, graph=graph)
    assert read["way"] == "download" and why in read["why"] and "etag" not in read


@pytest.mark.parametrize("url", [
    "http://example.com/" + "a" * 32, "https://127.0.0.1:40123/" + "a" * 32,
    "http://127.0.0.1:40123/short", "http://127.0.0.1:40123/" + "a" * 32 + "/../x",
    "http://127.0.0.1.evil.net:80/" + "a" * 32, "file:/etc/passwd",
])  # fmt: skip
def test_only_the_engines_own_loopback_url_is_a_network_input(url):
    with pytest.raises(ValueError):
        Loopback(url)


def test_the_loopback_input_is_widened_to_http_tcp_with_the_demuxers_kept_and_outputs_file_only():
    args = argv.split_piece(Loopback(URL), 4.0, 8.0, Path("/s/piece.mkv"))
    first = args.index("-protocol_whitelist")
    assert args[first + 1] == "http,tcp"
    assert args[args.index("-format_whitelist") + 1] == argv.SOURCE_DEMUXERS
    assert "hls" not in argv.SOURCE_DEMUXERS.split(",")
    assert "concat" not in argv.SOURCE_DEMUXERS.split(",")
    assert args[args.index("-i") + 1] == URL
    # Everything after the input (the output) is fenced to files.
    rest = args[args.index("-i") :]
    assert rest[rest.index("-protocol_whitelist") + 1] == "file"
    # A local file's input stays file-only.
    local = argv.split_piece(Path("/s/source.mp4"), 4.0, 8.0, Path("/s/piece.mkv"))
    assert local[local.index("-protocol_whitelist") + 1] == "file"
