"""Where audio is cut into pieces, and which packets of each the join keeps (pure math)."""

from __future__ import annotations

import pytest

from chalicelib.graph import audio_cuts
from chalicelib.graph.audio_cuts import FRAME, cuts, grain, layout, pre_roll, tasks
from chalicelib.graph.plan import Kind, Limits, Source, plan
from chalicelib.presets.work import Work

AAC = ("-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000")


@pytest.mark.parametrize(
    ("rate", "source", "expected"),
    [(48000, 48000, 1024), (48000, 44100, 5120), (44100, 48000, 150528), (48000, 32000, 3072)],
)
def test_seams_fall_on_whole_aac_frames_and_whole_source_samples(rate, source, expected):
    g = grain(rate, source)
    assert g == expected and g % FRAME == 0
    assert g * source % rate == 0  # the trim's instant is a source sample too
    assert pre_roll(rate, source) % g == 0 and pre_roll(rate, source) >= 4 * FRAME


def test_a_track_shorter_than_two_pieces_is_one_task():
    assert tasks(119.0, 48000, 60 * 48000 // 1024 * 1024, 4096) == [("audio", 119.0)]
    assert tasks(600.0, 0, 0, 0) == [("audio", 600.0)]  # not cuttable: one task, as before


def test_pieces_tile_the_track_and_the_last_runs_to_its_end():
    rate, piece, pre = layout(AAC, 48000, 10.0)
    assert (rate, piece, pre) == (48000, 468 * FRAME, 4 * FRAME)
    found = cuts(35.0, rate, piece, pre)
    assert [c.task_id for c in found] == ["audio-0000", "audio-0001", "audio-0002"]
    assert [c.start for c in found] == [0, piece, 2 * piece]
    assert [c.end for c in found] == [piece, 2 * piece, None]
    assert all(c.start % FRAME == 0 for c in found)
    first, middle, last = found
    assert (first.pre, first.post) == (0, 2 * FRAME)  # nothing before the track
    assert (middle.pre, middle.post) == (pre, 2 * FRAME)
    assert (last.pre, last.post) == (pre, 0)  # nothing after it
    assert middle.decode_from == piece - pre and middle.decode_to == 2 * piece + 2 * FRAME


def test_the_join_keeps_the_first_priming_and_drops_every_other_and_the_pre_roll():
    rate, piece, pre = layout(AAC, 48000, 10.0)
    first, middle, last = cuts(35.0, rate, piece, pre)
    assert (first.drop, first.keep) == (0, 1 + piece // FRAME)  # priming + its own frames
    assert (middle.drop, middle.keep) == (1 + 4, piece // FRAME)  # priming, 4 pre-roll
    assert (last.drop, last.keep) == (1 + 4, None)  # the rest, the encoder's flush included
    # Kept packets decode to consecutive frames: 1024 samples of priming, then the track.
    kept = first.keep + middle.keep
    assert (kept - 1) * FRAME == last.start


@pytest.mark.parametrize(
    ("args", "source", "rate"),
    [
        (AAC, 44100, 48000),
        (("-c:a", "aac", "-b:a", "96k"), 44100, 44100),  # no -ar: the source's rate
        (("-c:a", "libopus", "-b:a", "96k"), 48000, 0),  # Opus frames are not AAC's
        (("-c:a", "aac", "-af", "loudnorm"), 48000, 0),  # a filter sees the whole timeline
        (("-c:a", "aac", "-ac"), 48000, 0),  # an option without its value
    ],
)
def test_only_plain_native_aac_is_cut(args, source, rate):
    assert audio_cuts.output_rate(args, source) == rate


@pytest.mark.parametrize(
    ("container", "codec", "rate", "expected"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", "aac", 48000, 48000),
        ("mpegts", "ac3", 48000, 48000),
        ("wav", "pcm_s16le", 44100, 44100),
        ("matroska,webm", "aac", 48000, 0),  # milliseconds: 24 samples at 48 kHz
        ("mov,mp4,m4a,3gp,3g2,mj2", "opus", 48000, 0),
        ("mov,mp4,m4a,3gp,3g2,mj2", "aac", None, 0),
    ],
)
def test_only_sources_with_sample_exact_audio_timestamps_are_cut(container, codec, rate, expected):
    assert audio_cuts.exact_source(container, codec, rate) == expected


def test_a_source_that_does_not_start_at_zero_keeps_its_audio_whole():
    assert audio_cuts.exact_source("mpegts", "aac", 48000, start=1.4) == 0


def test_the_plan_lists_each_audio_piece_as_a_task_and_records_how_to_find_them_again():
    work = Work(renditions=("a",), cost=0.1, chunk_safe=True, gop_frames=30, audio_args=AAC)
    limits = Limits(audio_chunk_seconds=60.0)
    source = Source(600.0, None, None, has_video=False, audio_rate=48000)
    p = plan(source, work, limits=limits)
    ids = [t.id for t in p.tasks if t.kind is Kind.AUDIO]
    assert ids == [audio_cuts.task_id(i) for i in range(10)]
    assert sum(t.weight for t in p.tasks if t.kind is Kind.AUDIO) > 600.0 * 0.04  # + rolls
    again = type(p).from_record(p.record())
    assert [t.id for t in again.tasks] == [t.id for t in p.tasks]
    short = plan(Source(90.0, None, None, has_video=False, audio_rate=48000), work, limits=limits)
    assert [t.id for t in short.tasks if t.kind is Kind.AUDIO] == ["audio"]
