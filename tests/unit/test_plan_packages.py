"""A long ladder is packaged one rendition per task; short ones and single outputs are not."""

from __future__ import annotations

import json
from dataclasses import asdict
from fractions import Fraction

from chalicelib.graph.plan import Kind, Limits, Plan, Source, plan
from chalicelib.presets.work import Work

LADDER = Work(renditions=("720p", "480p", "360p"), cost=1.9, chunk_safe=True, gop_frames=60,
              graph=True, rendition_costs=(1.0, 0.55, 0.35))  # fmt: skip


def source(seconds: float) -> Source:
    return Source(duration=seconds, fps=Fraction(30), height=720)


def test_a_long_ladder_has_a_package_per_rendition_before_the_assemble():
    p = plan(source(600), LADDER, limits=Limits(package_min_seconds=120))
    packages = [t for t in p.tasks if t.kind is Kind.PACKAGE]
    assert [(t.id, t.rendition) for t in packages] == [
        ("package-720p", "720p"), ("package-480p", "480p"), ("package-360p", "360p")
    ]  # fmt: skip
    assert [t.kind for t in p.tasks[-4:]] == [Kind.PACKAGE] * 3 + [Kind.ASSEMBLE]
    # They fan in after the work: not work themselves, and they do not set the makespan.
    assert not {t.kind for t in p.work_tasks} & {Kind.PACKAGE, Kind.ASSEMBLE}
    again = Plan.from_record(json.loads(json.dumps(p.record())))
    assert [t.id for t in again.tasks] == [t.id for t in p.tasks]


def test_a_short_ladder_or_one_rendition_is_assembled_by_one_task():
    short = plan(source(100), LADDER, limits=Limits(package_min_seconds=120))
    single = plan(source(600), Work(renditions=("main.mp4",), cost=0.5, chunk_safe=True,
                                    gop_frames=60), limits=Limits(package_min_seconds=0))  # fmt: skip
    for p in (short, single):
        assert not [t for t in p.tasks if t.kind is Kind.PACKAGE]


def test_a_plan_stored_before_packages_reads_back_without_them():
    p = plan(source(600), LADDER, limits=Limits(package_min_seconds=120))
    record = json.loads(json.dumps(p.record()))
    del record["shape"]["packages"]
    old = Plan.from_record(record)
    assert not [t for t in old.tasks if t.kind is Kind.PACKAGE]
    assert len(old.tasks) == len(p.tasks) - 3 and "packages" in asdict(old.shape)
