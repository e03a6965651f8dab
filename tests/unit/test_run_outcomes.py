"""How a run's failures become outcomes, with no servers: the one mapping in graph/run.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.graph.run import Outcome, Result, Run
from chalicelib.media.steps import FfmpegKilled, MediaFailed


class Probe(Run):
    """A run whose steps raise what the test says, and whose writes are recorded."""

    def __init__(self, raises: Exception, *, broken_write: bool = False) -> None:
        super().__init__(7, 1, worker_id="w", deadline=None, stop=None, extra={})
        self.raises, self.broken_write = raises, broken_write
        self.writes: list[tuple[str, str]] = []

    def steps(self) -> Outcome:
        raise self.raises

    def scratch_name(self) -> str:
        return "job-7-probe"

    def renew(self) -> None:
        pass

    def lost(self) -> None:
        pass

    def failed(self, message: str, log_tail: str = "", ended: str = "") -> Outcome:
        if self.broken_write:
            raise TypeError("a bug in the failure path")
        self.writes.append(("failed", message))
        return Outcome(self.job_id, Result.ERROR, message)

    def retry(self, retries: int, ended: str, delay: int) -> Outcome:
        self.writes.append(("retry", ended))
        return Outcome(self.job_id, Result.RETRY, ended, delay=delay)


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OE_SCRATCH_DIR", str(tmp_path))


def test_a_deterministic_media_failure_fails_at_once():
    run = Probe(MediaFailed("ffmpeg failed: exit code 1"))
    assert run.execute().result is Result.ERROR
    assert run.writes == [("failed", "ffmpeg failed: exit code 1")]


def test_a_killed_ffmpeg_is_tried_again_then_fails_with_advice():
    run = Probe(FfmpegKilled(9, "Killed"))
    assert run.execute().result is Result.RETRY
    run = Probe(FfmpegKilled(9, "Killed"))
    run.retries = run.retry_budget  # this try spends the budget
    outcome = run.execute()
    assert outcome.result is Result.ERROR
    assert "killed by signal 9" in outcome.message and "more memory" in outcome.message


def test_a_failure_path_that_raises_keeps_the_message_instead_of_crashing_the_host():
    run = Probe(MediaFailed("ffmpeg failed: exit code 1"), broken_write=True)
    outcome = run.execute()
    assert outcome.result is Result.HAND_BACK
    assert not outcome.delete_message  # the message comes back: the job is not lost
    assert outcome.delay >= 1
