"""A task whose ffmpeg dies of a signal is tried again on its own; the job fails only when
the budget is spent, saying what happened and what to do.

The real ffmpeg is SIGKILLed right after it starts (what the kernel's out-of-memory
killer or a lost host does to it): nothing in the engine is replaced.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from chalicelib.jobs import records as jobs
from chalicelib.media.ffmpeg_process import FfmpegProcess
from chalicelib.store.models import Job
from tests.integration.test_graph import (
    FRAMES,
    Drain,
    decodes,
    ended,
    fetch,
    new_job,
    output_keys,
    run_with_a_broken_piece,
    upload,
)

pytestmark = pytest.mark.slow
KILLED = "ffmpeg was killed by signal 9 (SIGKILL)"


@pytest.fixture
def kill_ffmpeg(monkeypatch) -> Callable[[str, int], list[str]]:
    """`arm(match, times)`: SIGKILL the ffmpeg of the first `times` runs whose argv or
    folder names `match`, as soon as it starts. Returns the list of what was killed."""

    def arm(match: str, times: int) -> list[str]:
        killed: list[str] = []
        start = FfmpegProcess.start

        def start_then_kill(self: FfmpegProcess):
            process = start(self)
            if len(killed) < times and match in " ".join([*self.argv, str(self.cwd)]):
                os.kill(process.pid, signal.SIGKILL)  # ffmpeg alone, as the OOM killer does
                killed.append(str(self.cwd))
            return process

        monkeypatch.setattr(FfmpegProcess, "start", start_then_kill)
        return killed

    return arm


def _tries(view: dict) -> tuple[int, list[str]]:
    return view["tries"]["count"], [t["ended"] for t in view["tries"]["ended"]]


def test_a_killed_chunk_task_is_tried_again_and_the_job_completes_once_and_whole(
    aws, chunky, mezzanine, tmp_path, kill_ffmpeg
):
    killed = kill_ffmpeg("-encode-0001-", 1)
    job = new_job("h264_baseline_360p_600", upload(mezzanine))
    drain = Drain()
    drain.until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert len(killed) == 1
    views = {v["id"]: v for v in jobs.task_views(stored)}
    (task_id,) = [i for i in views if i.startswith("encode-0001")]
    assert _tries(views[task_id]) == (2, [KILLED])
    assert views[task_id]["status"] == "done"
    # Only the killed task ran twice; every other task once.
    assert all(_tries(v)[0] == 1 for i, v in views.items() if i != task_id)
    completions = [r for body, r in drain.outcomes if '"assemble"' in body and r == "completed"]
    assert len(completions) == 1
    (key,) = [k for k in output_keys() if k.endswith(".mp4")]
    assert decodes(fetch(key, tmp_path / "out.mp4"), "0:v:0") == FRAMES


def test_a_chunk_task_killed_while_it_reads_its_range_is_tried_again_and_completes(
    aws, chunky, mezzanine, tmp_path, kill_ffmpeg, monkeypatch
):
    monkeypatch.setenv("OE_RANGED_MIN_BYTES", "0")  # each chunk's task cuts its own piece
    killed = kill_ffmpeg("-encode-0001-", 1)  # its first ffmpeg: the cut from the source
    job = new_job("h264_baseline_360p_600", upload(mezzanine))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert jobs.public_view(stored)["plan"]["source_read"]["way"] == "ranged"
    assert len(killed) == 1
    (view,) = [v for v in jobs.task_views(stored) if v["id"].startswith("encode-0001")]
    assert _tries(view) == (2, [KILLED]) and view["status"] == "done"
    (key,) = [k for k in output_keys() if k.endswith(".mp4")]
    assert decodes(fetch(key, tmp_path / "out.mp4"), "0:v:0") == FRAMES


def test_a_killed_ladder_task_is_tried_again_and_the_package_plays_to_the_end(
    aws, chunky, mezzanine, tmp_path, kill_ffmpeg
):
    killed = kill_ffmpeg("-encode-0000", 1)
    job = new_job("h264_ladder_hls_dash", upload(mezzanine))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert len(killed) == 1
    local = tmp_path / "out"
    for key in output_keys():
        target = local / key.removeprefix("out/")
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(key, target)
    assert decodes(local / "master.m3u8", "0:v:0") == FRAMES
    assert decodes(local / "manifest.mpd", "0:v:0") == FRAMES
    retried = [v for v in jobs.task_views(stored) if v["tries"]["ended"]]
    assert [v["id"].startswith("encode-0000") for v in retried] == [True]


def test_a_single_job_whose_ffmpeg_is_killed_is_tried_again_and_completes(
    aws, scratch, mezzanine, tmp_path, kill_ffmpeg
):
    killed = kill_ffmpeg("h264_baseline_360p_600.mp4", 1)
    job = new_job("h264_baseline_360p_600", upload(mezzanine))
    drain = Drain()
    drain.until(ended(job))
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert len(killed) == 1
    view = jobs.public_view(stored)
    assert view["plan"]["mode"] == "single"
    assert _tries(view) == (2, [KILLED])
    assert [r for _, r in drain.outcomes] == ["retry", "completed"]
    (key,) = [k for k in output_keys() if k.endswith(".mp4")]
    assert decodes(fetch(key, tmp_path / "out.mp4"), "0:v:0") == FRAMES


@pytest.mark.parametrize("preset,match", [
    ("h264_baseline_360p_600", "-encode-0001-"),  # a chunk task of a chunked job
    ("single", "h264_baseline_360p_600.mp4"),  # the one task of a single job
])  # fmt: skip
def test_a_task_killed_past_its_budget_fails_the_job_saying_what_to_do(
    aws, scratch, mezzanine, monkeypatch, kill_ffmpeg, preset, match
):
    monkeypatch.setenv("OE_TASK_RETRIES", "2")  # three tries in all
    if preset != "single":
        monkeypatch.setenv("OE_CHUNK_MIN_SECONDS", "0")
        monkeypatch.setenv("OE_CHUNK_SECONDS", "3")
    killed = kill_ffmpeg(match, 10)
    job = new_job("h264_baseline_360p_600", upload(mezzanine))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "error"
    assert len(killed) == 3
    message = stored.error["message"]
    assert message.endswith(
        "ffmpeg was killed by signal 9 on 3 tries (out of memory?): give the encode function "
        "more memory or use a lighter preset"
    ), message
    assert stored.error["log"]  # ffmpeg's last lines, or that it printed nothing
    if preset == "single":
        view = jobs.public_view(stored)
    else:
        (view,) = [v for v in jobs.task_views(stored) if v["id"].startswith("encode-0001")]
        assert view["status"] == "failed"
    assert _tries(view) == (3, [KILLED, KILLED, KILLED])
    assert output_keys() == set()


def test_a_deterministic_ffmpeg_failure_still_fails_at_once(aws, chunky, mezzanine, tmp_path):
    """An exit code with an error in the log is the media's fault: no second try."""
    stored = run_with_a_broken_piece(upload(mezzanine), tmp_path)
    assert stored.status == "error"
    (view,) = [v for v in jobs.task_views(stored) if v["id"].startswith("encode-0002")]
    count, why = _tries(view)
    assert count == 1 and len(why) == 1 and "killed" not in why[0]
