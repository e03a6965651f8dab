"""A long source's plan holds at scale: thousands of tasks from a stored plan that stays a
small part of the job item (DynamoDB's limit is 400 KB), with no real media."""

from __future__ import annotations

import json
from fractions import Fraction

from chalicelib.graph import build
from chalicelib.graph.plan import MAX_CHUNKS, Kind, Limits, Plan, Source, plan
from chalicelib.presets.catalog import LADDER_SEEDS
from chalicelib.presets.work import Work
from chalicelib.store.item_size import ITEM_LIMIT_BYTES, item_bytes
from chalicelib.store.models import Job

TWO_HOURS_1080P30 = Source(duration=7200.0, fps=Fraction(30), height=1080)


def seeded_ladder() -> Work:
    """The seeded 4-rung H.264 ladder (1080p to 360p, 4 s segments) for a 1080p30 source."""
    data = next(data for _, name, data, _ in LADDER_SEEDS if "h264" in name)
    recipe = build.recipe_for({"data": data, "output": "master.m3u8"}, 1080, Fraction(30))
    return recipe.work(2.0)


def plan_bytes(p: Plan) -> int:
    """The `plan` attribute as DynamoDB counts it in the job item."""
    stored = Job(1, plan=p.record()).to_dynamodb_dict()
    return item_bytes({"plan": stored["plan"]})


def read_back(p: Plan) -> Plan:
    return Plan.from_record(json.loads(json.dumps(p.record())))


def test_a_two_hour_ladder_cut_at_one_segment_per_chunk_is_no_longer_capped_at_400_chunks():
    work = seeded_ladder()
    assert work.renditions == ("1080p", "720p", "480p", "360p") and work.gop_frames == 120
    p = plan(TWO_HOURS_1080P30, work, limits=Limits(chunk_seconds=4))
    assert len(p.chunks) == 1800  # one 4 s segment each: the most a 2-hour ladder can have
    assert all(c.first_frame == 120 * c.index for c in p.chunks)
    assert len(p.tasks) > 3000  # an encode and a thumbnails task per chunk, audio, assemble
    assert plan_bytes(p) < 16 * 1024
    assert read_back(p) == p


def test_a_two_hour_ladder_at_the_default_chunk_length_plans_in_under_4_kb():
    p = plan(TWO_HOURS_1080P30, seeded_ladder())
    assert len(p.chunks) == 360 and p.renditions == ("1080p", "720p", "480p", "360p")
    kinds = [t.kind for t in p.tasks]
    # One encode per chunk and rendition, or per chunk when its renditions share a decode.
    assert kinds.count(Kind.ENCODE) == 360 * (1 if p.decode_once else 4)
    assert kinds.count(Kind.THUMBNAILS) == 360
    assert plan_bytes(p) < 4 * 1024
    assert read_back(p) == p


def test_the_chunk_cap_lengthens_chunks_and_keeps_the_largest_plan_a_small_part_of_an_item():
    # Twelve hours of ten renditions cut at 1 s: 43,200 chunks wanted, the cap keeps them
    # under 10,000, every seam still on a multiple of the GOP.
    ten = Work(renditions=tuple(f"{h}p" for h in range(100, 1100, 100)), cost=5.0,
               chunk_safe=True, gop_frames=30, thumbnails=True, graph=True)  # fmt: skip
    source = Source(duration=12 * 3600.0, fps=Fraction(30), height=1080)
    p = plan(source, ten, limits=Limits(chunk_seconds=1))
    assert 5000 < len(p.chunks) <= MAX_CHUNKS
    assert all(c.first_frame % 30 == 0 for c in p.chunks)
    assert plan_bytes(p) < 64 * 1024 < ITEM_LIMIT_BYTES // 6


def test_the_fan_out_hands_on_the_first_piece_at_once_then_full_batches_or_a_seconds_worth():
    p = plan(TWO_HOURS_1080P30, seeded_ladder(), limits=Limits(chunk_seconds=4))
    per_chunk = [[t for t in p.work_tasks if t.chunk == c.index] for c in p.chunks]
    now = [0.0]
    batches: list[int] = []
    fan = build.FanOut(lambda tasks: batches.append(len(tasks)), clock=lambda: now[0])
    for tasks in per_chunk[:60]:  # quick pieces: a hundredth of a second each
        now[0] += 0.01
        fan.add(tasks)
    assert batches == [len(per_chunk[0]), build.FAN_OUT_BATCH, build.FAN_OUT_BATCH]
    now[0] += build.FAN_OUT_LINGER_SECONDS  # a slow piece: what waited goes with it
    fan.add(per_chunk[60])
    assert sum(batches) == sum(len(t) for t in per_chunk[:61]) and not fan.pending
    fan.add(per_chunk[61])
    fan.flush()  # the end of the split: the rest
    assert fan.flushed == sum(len(t) for t in per_chunk[:62]) and not fan.pending
