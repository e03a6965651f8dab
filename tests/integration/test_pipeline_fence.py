"""The pipeline judges a job's preset again before running it, and stops ffmpeg at its limit."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.errors import InvalidInput
from chalicelib.graph.encode_queue import run_message
from chalicelib.jobs import records as jobs
from chalicelib.media import sandbox
from chalicelib.store.models import Job, Preset, SystemItem
from tests.conftest import ADMIN

pytestmark = pytest.mark.slow

# Stored by the deny-list validator this project used before the allow-list.
OLD_HOSTILE = json.dumps({"raw": ["-filter_complex 'amovie'=filename=\t/proc/self/environ:f=u8",
                                  "-c:a pcm_u8", "-f u8"]})  # fmt: skip


def _upload(path) -> str:
    boto3.client("s3").upload_file(str(path), settings().input_bucket, "src/clip.mp4")
    return "s3:///src/clip.mp4"


def _store_unchecked(preset_id: int, name: str, data: str) -> None:
    """A preset row as an older release would have written it, bypassing today's checks."""
    Preset(preset_id, name=name, data=data, output="seen.raw", active=True).save()
    SystemItem(f"preset-name#{name}", ref=preset_id).save()


def _message(job: Job) -> str:
    return json.dumps({"job_id": int(job.id), "attempt": int(job.attempt)})


def _outputs() -> dict:
    answer = boto3.client("s3").list_objects_v2(Bucket=settings().output_bucket, Prefix="out/")
    return answer.get("Contents", [])


def test_a_stored_preset_that_no_longer_validates_cannot_start_a_job(aws, media):
    _store_unchecked(900, "old_hostile", OLD_HOSTILE)
    with pytest.raises(InvalidInput, match=r"no longer passes validation.*-filter_complex"):
        jobs.create_job(owner=ADMIN[0], preset="old_hostile", source=_upload(media["clip"]),
                        dest="s3:///out/clip/")  # fmt: skip


def test_a_queued_job_whose_preset_no_longer_validates_fails_without_running(aws, media, scratch):
    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                          source=_upload(media["clip"]), dest="s3:///out/clip/")  # fmt: skip
    # The job's snapshot was taken from a table written by an older, weaker validator.
    job.update(actions=[Job.preset_snapshot.set({"id": 1, "data": OLD_HOSTILE, "output": "x.raw"})])
    outcome = run_message(_message(job), worker_id="test")
    assert outcome.result == "error"
    job.refresh()
    assert job.status == "error"
    assert "no longer passes validation" in job.error["message"]
    assert "-filter_complex" in job.error["message"]
    assert job.probe is None  # nothing was downloaded or run
    assert _outputs() == []


def test_an_encode_past_its_time_limit_is_killed_and_the_job_fails_saying_so(
    aws, media, scratch, monkeypatch
):
    monkeypatch.setattr(sandbox, "time_limit", lambda deadline, estimate=None: 0.0)
    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                          source=_upload(media["clip"]), dest="s3:///out/clip/")  # fmt: skip
    outcome = run_message(_message(job), worker_id="test")
    assert outcome.result == "error", outcome.message
    job.refresh()
    assert "ran longer than its limit" in job.error["message"]
    assert _outputs() == []
    assert not any(scratch.iterdir())


@pytest.fixture
def small_file_bound(monkeypatch):
    monkeypatch.setenv("OE_FFMPEG_MAX_FILE_BYTES", "2000")
    settings.cache_clear()
    yield
    settings.cache_clear()  # before monkeypatch puts the environment back


def test_an_output_past_the_file_size_bound_fails_the_job_saying_so(
    aws, media, scratch, small_file_bound
):
    job = jobs.create_job(owner=ADMIN[0], preset="h264_baseline_360p_600",
                          source=_upload(media["clip"]), dest="s3:///out/clip/")  # fmt: skip
    outcome = run_message(_message(job), worker_id="test")
    assert outcome.result == "error", outcome.message
    job.refresh()
    assert "larger than 2000 bytes" in job.error["message"]
    assert _outputs() == []
