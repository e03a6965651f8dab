"""A seeded ladder's HLS and DASH say how long each segment is, and the segments agree.

For every representation of the H.264 and AV1 ladders, chunked and single: the MPD's
durations (mediaPresentationDuration, the period, each SegmentTimeline entry) and the
media playlists' #EXTINF values match the CMAF segments on disk within one frame, no
segment starts past the end, and a player that switches rendition at any time in the
last segments finds a segment there in every representation.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from chalicelib.graph.plan import Limits
from chalicelib.media import steps
from chalicelib.presets.catalog import LADDERS
from chalicelib.presets.recipe import ladder_recipe
from tests import cmaf
from tests.media import generate
from tests.unit.test_media_graph import run_graph

pytestmark = pytest.mark.slow
FPS = Fraction(30)
SECONDS = 12  # three 4 s segments: the end falls on a segment boundary, as the 20 s report did
FRAME = float(1 / FPS)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """720p (two AV1 and three H.264 renditions), 30 fps, a keyframe every 50 frames, audio."""
    return generate(
        tmp_path_factory.mktemp("src") / "src.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=7:allf=t:all_seed=42",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "24", "-g", "50",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
    )  # fmt: skip


def iso_seconds(value: str) -> float:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", value)
    assert match, value
    hours, minutes, seconds = (float(x or 0) for x in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def mpd_segments(out: Path) -> tuple[float, float, dict[str, list[tuple[Path, float, float]]]]:
    """(mediaPresentationDuration, period duration, {representation: [(file, start, end)]})."""
    mpd = MPEGDASHParser.parse((out / "manifest.mpd").read_text())
    (period,) = mpd.periods
    found: dict[str, list[tuple[Path, float, float]]] = {}
    for adaptation in period.adaptation_sets:
        for rep in adaptation.representations:
            (segments,) = rep.segment_lists
            scale = int(segments.timescale or 1)
            (timeline,) = segments.segment_timelines
            times: list[tuple[float, float]] = []
            at = 0
            for s in timeline.Ss:
                at = int(s.t) if s.t is not None else at
                for _ in range(int(s.r or 0) + 1):
                    times.append((at / scale, (at + int(s.d)) / scale))
                    at += int(s.d)
            urls = [out / u.media for u in segments.segment_urls]
            assert len(urls) == len(times), rep.id
            found[rep.id] = [
                (url, start, end) for url, (start, end) in zip(urls, times, strict=True)
            ]
            assert (out / segments.initializations[0].source_url).is_file()
    return iso_seconds(mpd.media_presentation_duration), iso_seconds(period.duration), found


def on_disk(files: list[Path]) -> list[cmaf.Segment]:
    init = files[0].parent / "init.mp4"
    return [cmaf.segment(path, init) for path in files]


def package(source: Path, name: str, chunked: bool, tmp_path: Path) -> Path:
    ladder = dict(LADDERS)[name]
    recipe = ladder_recipe(ladder, 720, FPS)
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    limits = Limits(chunk_min_seconds=0, chunk_seconds=4) if chunked else Limits()
    p, joined, audio = run_graph(source, recipe, work, limits)
    assert (len(p.chunks) > 1) is chunked
    videos = [(v, joined[v.name]) for v in recipe.videos]
    steps.assemble_ladder(videos, audio, recipe, FPS, out, steps.local_run)
    return out


@pytest.mark.parametrize("chunked", [False, True], ids=["single", "chunked"])
@pytest.mark.parametrize("name", ["h264_ladder_hls_dash", "av1_ladder_hls_dash"])
def test_every_representation_ends_where_its_manifests_say(source, tmp_path, name, chunked):
    out = package(source, name, chunked, tmp_path)
    presentation, period, reps = mpd_segments(out)
    assert len(reps) >= 3  # two or more videos and the audio
    assert abs(presentation - SECONDS) <= FRAME and abs(period - SECONDS) <= FRAME

    for rep, listed in reps.items():
        disk = on_disk([path for path, _, _ in listed])
        for (path, start, end), seg in zip(listed, disk, strict=True):
            where = (
                f"{rep} {path.name}: MPD {start:.4f}-{end:.4f}, disk {seg.start:.4f}-{seg.end:.4f}"
            )
            assert abs(seg.start - start) <= FRAME and abs(seg.end - end) <= FRAME, where
            assert start < period - FRAME / 2, f"{where}: starts past the period's end"
        assert abs(disk[-1].end - period) <= FRAME, f"{rep} ends at {disk[-1].end:.4f}"

        # HLS plays the same segments: each #EXTINF is its segment's length, and they add up.
        playlist = m3u8.load(str(out / rep / "index.m3u8"))
        assert [out / rep / s.uri for s in playlist.segments] == [p for p, _, _ in listed]
        for s, seg in zip(playlist.segments, disk, strict=True):
            assert abs(s.duration - seg.duration) <= FRAME, f"{rep} {s.uri}: #EXTINF {s.duration}"
        assert abs(sum(s.duration for s in playlist.segments) - period) <= FRAME, rep

    # An ABR switch at any moment of the last segments lands on a segment in every one.
    last_start = max(start for listed in reps.values() for _, start, _ in listed[-2:])
    moments = [last_start - 4 + i * FRAME for i in range(int((period - last_start + 4) / FRAME))]
    for moment in moments:
        for rep, listed in reps.items():
            assert any(start <= moment < end for _, start, end in listed), (rep, moment)
    counts = {rep: len(listed) for rep, listed in reps.items()}
    assert len(set(counts.values())) == 1, counts  # audio and video cut alike
