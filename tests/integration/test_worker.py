"""The long-queue worker: drains the queue with the same pipeline and gives work back on stop."""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.fleet.worker import Worker
from chalicelib.jobs import records as jobs
from chalicelib.presets import catalog as presets
from chalicelib.store import queues
from chalicelib.store.models import Job
from tests.conftest import ADMIN
from tests.polling import wait_until

pytestmark = pytest.mark.slow


def long_queue_bodies(wait: int = 0) -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().long_queue)["QueueUrl"]
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def long_job(media, preset: str = "h264_baseline_360p_600", clip: str = "clip") -> Job:
    boto3.client("s3").upload_file(str(media[clip]), settings().input_bucket, f"src/{clip}.mp4")
    job = jobs.create_job(owner=ADMIN[0], preset=preset, source=f"src/{clip}.mp4", dest="out/")
    queues.send_job("long", int(job.id), 1)
    return job


def test_the_worker_encodes_jobs_from_the_long_queue(aws, media, scratch):
    job = long_job(media)
    worker = Worker()
    assert worker.run_once(wait_seconds=1) == 1
    assert Job.get(job.id).status == "completed"
    assert long_queue_bodies() == []  # the message was deleted


def test_stopping_the_worker_gives_its_job_back(aws, media, scratch):
    presets.create_preset(presets.PresetInput(
        name="slow", data='{"raw":["-vf scale=-2:1080","-c:v libx264","-preset veryslow","-y"]}', output="s.mp4"))  # fmt: skip
    job = long_job(media, "slow", "long")
    worker = Worker()
    thread = threading.Thread(target=worker.serve, daemon=True)
    thread.start()
    wait_until(lambda: Job.get(job.id).status == "encoding", 60, "encoding to start")
    worker.stopping.set()  # what SIGTERM does
    thread.join(timeout=30)
    assert not thread.is_alive()
    stored = Job.get(job.id)
    assert (stored.status, stored.attempt, stored.lease_owner) == ("queued", 1, None)
    assert long_queue_bodies() == [{"job_id": int(job.id), "attempt": 1}]  # visible again at once
    assert not any(scratch.iterdir())


def test_an_idle_worker_stops_within_its_receive_wait_and_says_so(aws):
    from chalicelib.fleet import heartbeats
    from chalicelib.fleet.worker import RECEIVE_WAIT_SECONDS

    worker = Worker(worker_id="idle-one")
    thread = threading.Thread(target=worker.serve, daemon=True)
    thread.start()
    states = lambda: {w.worker_id: w.state for w in heartbeats.all_workers()}  # noqa: E731
    wait_until(lambda: states().get("idle-one") == "idle", 30, "the worker to report idle")
    worker.stopping.set()  # what SIGTERM does
    thread.join(timeout=RECEIVE_WAIT_SECONDS + 5)  # one 1 s receive, not the 5 s long poll it had
    assert not thread.is_alive()
    assert states()["idle-one"] == "stopping"
