"""Chunk tasks read their own range of the source (no whole download before the fan-out),
against moto's S3 with real ffmpeg: the same output as the download way, the fallback for
an MPEG-TS, and a hostile source that must not make ffmpeg fetch anything else."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from chalicelib.graph import build, source_read
from chalicelib.jobs import records as jobs
from chalicelib.media import steps
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.store import messages, queues, storage
from chalicelib.store.models import Job
from chalicelib.store.source_proxy import SourceProxy
from tests.integration.test_graph import (
    FRAMES,
    Drain,
    _started_graph,
    decodes,
    ended,
    fetch,
    new_job,
    output_keys,
    upload,
)
from tests.media import generate

pytestmark = pytest.mark.slow
PRESET = "h264_baseline_360p_600"


@pytest.fixture
def ranged(chunky, monkeypatch):
    """Any source is big enough to be read by range."""
    monkeypatch.setenv("OE_RANGED_MIN_BYTES", "0")
    return chunky


class Reads:
    """Every GetObject of one key at the S3 API: its Range (None: the whole object) and
    the bytes S3 answered with, and which run (the job's, or a task's) asked."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.calls: list[tuple[str | None, int, str]] = []
        self.lock = threading.Lock()

    def by(self, who: str) -> list[tuple[str | None, int]]:
        return [(r, n) for r, n, w in self.calls if w == who]

    def whole(self) -> list[str]:
        return [w for r, _, w in self.calls if r is None]


@pytest.fixture
def s3_reads(monkeypatch) -> Iterator[Any]:
    inner = botocore.client.BaseClient._make_api_call
    watching: list[Reads] = []

    def watched(self, operation, params):
        answer = inner(self, operation, params)
        for reads in watching:
            if operation == "GetObject" and params.get("Key") == reads.key:
                who = threading.current_thread().name
                with reads.lock:
                    reads.calls.append((params.get("Range"), answer["ContentLength"], who))
        return answer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", watched)

    def watch(key: str) -> Reads:
        reads = Reads(key)
        watching.append(reads)
        return reads

    yield watch


def video_md5(path: Path) -> str:
    """The video stream's packets, bit for bit (container timing aside)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file",
         "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def keyframe_times(path: Path) -> list[float]:
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-protocol_whitelist", "file", "-i", str(path),
         "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    base = next(line for line in lines if line.startswith("#tb 0:")).split(":")[1]
    num, den = (int(x) for x in base.strip().split("/"))
    # framecrc: stream, dts, pts, duration, size, crc, and "F=0x0" for a frame that is not a
    # keyframe (a keyframe's flags are the default, not printed).
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    return [int(r[2]) * num / den for r in rows if not any("F=" in x for x in r[6:])]


def run_job(source: str) -> Job:
    job = new_job(PRESET, source)
    Drain().until(ended(job), workers=2)
    return Job.get(job.id)


def test_a_chunked_job_reads_its_mp4_by_range_and_each_chunk_gets_what_the_split_gave(
    aws, ranged, mezzanine, tmp_path, s3_reads
):
    size = mezzanine.stat().st_size
    reads = s3_reads("src/ranged.mp4")
    stored = run_job(upload(mezzanine, "src/ranged.mp4"))
    assert stored.status == "completed", stored.error
    plan = jobs.public_view(stored)["plan"]
    assert plan["mode"] == "chunked" and plan["chunks"] == 3
    assert plan["source_read"]["way"] == "ranged", plan
    assert plan["source_read"]["bytes"] == size and plan["source_read"]["ready_seconds"] > 0
    # Never a whole download, and the job's own run (probe and plan) read a small part.
    assert reads.whole() == []
    assert all(r and r.startswith("bytes=") for r, _, _ in reads.calls)
    # No piece was stored for the tasks: each cut its own.
    ((key,),) = [[k for k in output_keys() if k.endswith(".mp4")]]
    ranged_out = fetch(key, tmp_path / "ranged.mp4")
    assert decodes(ranged_out, "0:v:0") == FRAMES

    # Seams on keyframes: each chunk starts a GOP (72 frames, the preset's fixed GOP).
    assert [round(t, 3) for t in keyframe_times(ranged_out)] == [0.0, 2.4, 4.8]
    # Each chunk's encode read the same packets the split of a downloaded source gives it.
    plan_ = build.Graph.of(stored).plan
    located = source_read.planned(stored.source, plan_)
    for chunk in plan_.chunks:
        seam = steps.Seam(chunk.index, chunk.start, chunk.end)
        with source_read.served(located) as url:
            cut = source_read.cut_piece(url, seam, tmp_path / "cut", steps.local_run, 0.0)
        (split,) = steps.split(mezzanine, [seam], tmp_path / "split", steps.local_run)
        assert video_md5(cut) == video_md5(split), chunk


def test_a_ladder_read_by_range_packages_every_frame_with_its_audio_and_thumbnails(
    aws, ranged, mezzanine, tmp_path, s3_reads, monkeypatch
):
    monkeypatch.setenv("OE_AUDIO_CHUNK_SECONDS", "1.5")  # the audio in pieces too
    reads = s3_reads("src/ladder.mp4")
    job = new_job("h264_ladder_hls_dash", upload(mezzanine, "src/ladder.mp4"))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert jobs.public_view(stored)["plan"]["source_read"]["way"] == "ranged"
    assert reads.whole() == []
    assert len([t for t in jobs.task_views(stored) if t["kind"] == "audio"]) > 1
    local = tmp_path / "out"
    for key in output_keys():
        target = local / key.removeprefix("out/")
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(key, target)
    assert decodes(local / "master.m3u8", "0:v:0") == FRAMES
    assert decodes(local / "manifest.mpd", "0:a:0") != 0
    assert (local / "thumbnails" / "poster.jpg").exists()
    assert (local / "thumbnails" / "sprite.jpg").exists()


def test_the_job_run_reads_only_the_header_and_index_and_the_chunks_about_the_source(
    aws, ranged, tmp_path, s3_reads, monkeypatch
):
    monkeypatch.setenv("OE_CHUNK_SECONDS", "7.2")  # 7.2 s chunks: a piece's 2 s tail is less
    # Video only (no audio task, which reads every byte) and longer than the shared clip.
    source = generate(
        tmp_path / "long.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=7:allf=t:all_seed=42",
        "-t", "28.8", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "22", "-g", "30",
        "-pix_fmt", "yuv420p",
    )  # fmt: skip
    size = source.stat().st_size
    reads = s3_reads("src/long.mp4")
    cuts: list[int] = []  # bytes each chunk's proxy fetched
    exit_ = SourceProxy.__exit__

    def counted(self, *exc):
        cuts.append(self.bytes_read)
        return exit_(self, *exc)

    monkeypatch.setattr(SourceProxy, "__exit__", counted)
    job, bodies = _started_graph(PRESET, upload(source, "src/long.mp4"))
    planning = sum(n for _, n, _ in reads.calls)
    assert planning < size / 4, (planning, size)  # the header and index, not the media
    cuts.clear()
    for body in bodies:
        queues.send("encode", messages.parse(body))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert jobs.public_view(stored)["plan"]["chunks"] == 4
    assert reads.whole() == []
    # Each chunk its own part, 2 s past its end (B-frames reorder), and a window's tail
    # (small here beside a real source's, but a GET doubles up to 8 MiB).
    assert len(cuts) == 4 and all(n < 0.6 * size for n in cuts), (cuts, size)
    assert sum(cuts) < 1.8 * size, (cuts, size)


def test_an_mpegts_source_is_downloaded_and_split_as_before_saying_why(
    aws, ranged, mezzanine, tmp_path, s3_reads
):
    ts = generate(tmp_path / "mezz.ts", "-i", str(mezzanine), "-c", "copy", "-f", "mpegts")
    reads = s3_reads("src/mezz.ts")
    stored = run_job(upload(ts, "src/mezz.ts"))
    assert stored.status == "completed", stored.error
    read = jobs.public_view(stored)["plan"]["source_read"]
    assert read["way"] == "download" and read["why"].startswith("mpegts has no index"), read
    # Probed by range first (no download for that), then downloaded once for the split.
    assert len(reads.whole()) == 1 and reads.calls[0][0] is not None
    (key,) = [k for k in output_keys() if k.endswith(".mp4")]
    assert decodes(fetch(key, tmp_path / "out.mp4"), "0:v:0") == FRAMES


class Witness:
    """A local HTTP server that must never be asked for anything."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        witness = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms wait between headers and body

            def do_GET(self) -> None:
                witness.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def witness() -> Iterator[Witness]:
    server = Witness()
    yield server
    server.close()


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_a_hostile_source_read_by_range_makes_ffmpeg_fetch_nothing_else(
    aws, ranged, tmp_path, witness, kind
):
    if kind == "concat":
        body = f"ffconcat version 1.0\nfile '{witness.url}/other.mp4'\n"
    else:  # a playlist that names a segment on another server
        segment = f"{witness.url}/segment.ts"
        body = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{segment}\n#EXT-X-ENDLIST\n"
    path = tmp_path / "evil.mp4"
    path.write_text(body)
    stored = run_job(upload(path, f"src/evil-{kind}.mp4"))
    assert stored.status == "error"
    assert witness.requests == []
    # Neither the proxy's URL nor its secret path is in what the job shows.
    shown = str(stored.error)
    assert "127.0.0.1" not in shown.replace(witness.url, "")
    assert "not" in stored.error["message"]  # "... is not a readable media file ..."


def test_a_storage_error_during_a_ranged_read_is_retried_not_failed(
    aws, ranged, tmp_path, monkeypatch
):
    from botocore.exceptions import ClientError

    read_range, cut_piece = storage.read_range, source_read.cut_piece
    cutting = threading.Event()
    failed: list[int] = []

    def cut(*args, **kwargs):
        cutting.set()  # a chunk's task is reading (not the job's probe)
        return cut_piece(*args, **kwargs)

    def flaky(location, first, last, etag):
        if cutting.is_set() and not failed:
            failed.append(first)
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "GetObject")
        return read_range(location, first, last, etag)

    monkeypatch.setattr(source_read, "cut_piece", cut)
    monkeypatch.setattr(storage, "read_range", flaky)
    # Video only: the job's run reads no audio once the chunks' tasks are cutting.
    video = generate(
        tmp_path / "video.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "7.2",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
    )  # fmt: skip
    stored = run_job(upload(video, "src/flaky.mp4"))
    assert stored.status == "completed", stored.error
    assert len(failed) == 1
    retried = [v for v in jobs.task_views(stored) if v["tries"]["ended"]]
    assert len(retried) == 1 and "SlowDown" in retried[0]["tries"]["ended"][0]["ended"]
    (key,) = [k for k in output_keys() if k.endswith(".mp4")]
    assert decodes(fetch(key, tmp_path / "out.mp4"), "0:v:0") == FRAMES


def test_a_source_overwritten_after_planning_fails_the_job_saying_so(
    aws, ranged, mezzanine, tmp_path
):
    job, bodies = _started_graph(PRESET, upload(mezzanine, "src/moving.mp4"))
    other = tmp_path / "other.mp4"
    other.write_bytes(mezzanine.read_bytes()[::-1])
    upload(other, "src/moving.mp4")  # a new object under the key: a new ETag
    for body in bodies:
        queues.send("encode", messages.parse(body))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "error"
    assert "changed after the job planned it" in stored.error["message"], stored.error
    assert output_keys() == set()
