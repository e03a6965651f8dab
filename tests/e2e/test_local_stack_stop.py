"""SIGTERM stops the local stack in seconds in every phase of a chunked ladder job, frees
its ports, and the job completes once after a start on the same ports.

The test starts `python -m ops.local_stack`, follows one chunked ladder job through the
job and task views until it reaches a phase, sends SIGTERM, and starts the stack again at
once on the same two ports and state folder; then the same for the job's next phase.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from ops.local_stack import free_port, running
from tests import media as make
from tests.e2e.test_local_stack import aws_client, wait_for_job
from tests.e2e.test_local_stack_lifecycle import (
    FAST,
    create_job,
    ffmpegs_under,
    job,
    login,
    phase_lines,
    port_free,
)
from tests.polling import wait_until

pytestmark = pytest.mark.slow
STOP_BOUND_SECONDS = 15  # what `make run` promises on SIGTERM, whatever its jobs are doing
# Three 4 s chunks, each its own encode task; two handlers at once, as on a laptop.
ENV = {**FAST, "OE_CHUNK_MIN_SECONDS": "0", "OE_CHUNK_SECONDS": "4", "OE_LOCAL_CONCURRENCY": "2"}
Phase = Callable[[dict, list[dict]], bool]


def tasks(facts: dict, auth: dict, job_id: int) -> list[dict]:
    r = requests.get(f"{facts['api']}/jobs/{job_id}/tasks", headers=auth, timeout=10)
    return r.json().get("items", []) if r.status_code == 200 else []


def running_task(kind: str) -> Phase:
    return lambda j, ts: any(t["kind"] == kind and t["status"] == "running" for t in ts)


PHASES: dict[str, Phase] = {
    # Probing, planning and cutting the source into pieces: no encode task exists yet.
    "planning": lambda j, ts: (
        j["status"] in ("downloading", "probing")
        or (j["status"] == "encoding" and not any(t["kind"] == "encode" for t in ts))
    ),
    "chunk encodes": running_task("encode"),
    "assembling": lambda j, ts: j["status"] == "encoding" and running_task("assemble")(j, ts),
    "publishing": lambda j, ts: j["status"] == "uploading",
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 s of near-lossless 480p: MBs to download and cut, and a ladder of two rungs (480p
    and 360p) that takes seconds to encode, so that each phase lasts long enough to stop in."""
    return make.av_clip(tmp_path_factory.mktemp("clips") / "ladder.mp4", seconds=12,
                        size="854x480", rate=30)  # fmt: skip


def wait_for_phase(facts: dict, auth: dict, job_id: int, phase: Phase, name: str) -> dict:
    """The job's view once it is in the phase."""

    def reached() -> dict | None:
        j = job(facts, auth, job_id)
        assert j["status"] not in ("completed", "error", "cancelled"), f"passed {name}: {j}"
        return j if phase(j, tasks(facts, auth, job_id) if name != "publishing" else []) else None

    return wait_until(reached, 300, f"job {job_id} to reach {name}", every=0.05)


def test_a_stop_in_each_phase_is_quick_frees_the_ports_and_the_job_completes_once(tmp_path, clip):
    """One job, stopped once in each phase in turn: after each stop the stack starts again on
    the same ports and state, and the job goes on from where the stop left it to the next
    phase. (One job through every phase, rather than a job per phase: the same stops, with
    five stack starts instead of eight, and one encode of the ladder instead of four.)"""
    state = tmp_path / "stack"
    state.mkdir()
    api_port, aws_port = free_port(), free_port()
    ports = {"PORT": str(api_port), "AWS_PORT": str(aws_port)}
    job_id, attempt, completed, took = 0, 0, 0, {}
    for run, name in enumerate(PHASES):
        log = state / f"run{run}.log"
        with log.open("w") as out, running(state, out, **ENV, **ports) as (process, facts):
            auth = login(facts)
            if not job_id:
                aws_client(facts, "s3").upload_file(str(clip), facts["buckets"]["input"], "l.mp4")
                made = create_job(facts, auth, "s3:///l.mp4", "s3:///ladder/",
                                  "h264_ladder_hls_dash")  # fmt: skip
                job_id, attempt = made["id"], made["attempt"]
            at = wait_for_phase(facts, auth, job_id, PHASES[name], name)
            # Resumed (the same attempt) or requeued (the next one) by the start before.
            assert at["attempt"] in (attempt, attempt + 1), (name, attempt, at)
            attempt = at["attempt"]
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=120) == 0
            took[name] = time.monotonic() - began
            # Right after the exit: both ports free and no ffmpeg of this stack left.
            assert port_free(api_port) and port_free(aws_port)
            wait_until(lambda: not ffmpegs_under(state), 5, "the stack's ffmpeg runs to end")
        print(f"SIGTERM while {name}: the stack stopped in {took[name]:.1f} s")
        # A stop that comes after the last upload of the publish finds the job's completion
        # under way, and lets it finish; in every other phase the job is handed back.
        completed += phase_lines(log, job_id, "completed")
        assert completed == 0 or name == "publishing", f"completed before {name}'s stop"
    slow = {name: round(s, 1) for name, s in took.items() if s > STOP_BOUND_SECONDS}
    assert not slow, f"stops over {STOP_BOUND_SECONDS} s: {slow}"

    last_log = state / "last.log"
    with last_log.open("w") as out, running(state, out, **ENV, **ports) as (_, facts):
        done = wait_for_job(facts["api"], login(facts), job_id, seconds=600)
        keys = {o["key"] for o in done["outputs"]}
        assert {"ladder/master.m3u8", "ladder/manifest.mpd"} <= keys, sorted(keys)
        assert done["attempt"] in (attempt, attempt + 1)
    assert completed + phase_lines(last_log, job_id, "completed") == 1
