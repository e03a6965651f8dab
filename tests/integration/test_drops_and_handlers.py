"""S3 drops and the encode queue handler, invoked through the Chalice app's own handlers."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.accounts.users import SYSTEM_USER
from chalicelib.config import settings
from chalicelib.store.models import Job

pytestmark = pytest.mark.slow


def drop_event(client: Client, key: str, sequencer: str = "0055AED6DCD90281E5") -> dict:
    event = client.events.generate_s3_event(
        bucket=settings().input_bucket, key=quote_plus(key, safe="/")
    )
    event["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    return event


def all_jobs() -> list[Job]:
    return list(Job.by_id.query("job", scan_index_forward=False))


@pytest.fixture
def client(aws):
    with Client(app, stage_name="local") as c:
        yield c


@pytest.mark.parametrize(
    "path", ["h264_main_480p_1000/shows/a b+c ünï 100%.mp4", "h264_main_480p_1000/plain.mov"]
)
def test_a_drop_under_a_preset_folder_creates_one_job_with_that_preset(client, path):
    key = settings().watch_prefix + path
    client.lambda_.invoke("drops", drop_event(client, key))
    (job,) = all_jobs()
    assert job.preset == "h264_main_480p_1000"
    assert job.owner == SYSTEM_USER and job.origin["kind"] == "s3-drop"
    assert job.source == f"s3://{settings().input_bucket}/{key}"
    rest = path.split("/", 1)[1].rsplit(".", 1)[0]
    assert job.dest == f"s3://{settings().output_bucket}/outputs/{rest}/"


def test_a_key_directly_under_the_prefix_uses_the_default_presets(client):
    client.lambda_.invoke("drops", drop_event(client, settings().watch_prefix + "clip.mp4"))
    assert [j.preset for j in all_jobs()] == list(settings().default_presets)
    assert all_jobs()[0].dest.endswith("/outputs/clip/")


def test_duplicate_notifications_create_exactly_one_job(client):
    event = drop_event(client, settings().watch_prefix + "h264_main_480p_1000/twice.mp4")
    for _ in range(3):
        client.lambda_.invoke("drops", event)
    assert len(all_jobs()) == 1
    # A new upload of the same key (new sequencer) is a new job.
    client.lambda_.invoke(
        "drops",
        drop_event(
            client, settings().watch_prefix + "h264_main_480p_1000/twice.mp4", "0055AED6DCD90281E6"
        ),
    )
    assert len(all_jobs()) == 2


def test_folder_markers_and_other_buckets_are_ignored(client):
    client.lambda_.invoke(
        "drops", drop_event(client, settings().watch_prefix + "h264_main_480p_1000/")
    )
    other = client.events.generate_s3_event(
        bucket="someone-else", key=settings().watch_prefix + "x.mp4"
    )
    client.lambda_.invoke("drops", other)
    assert all_jobs() == []


def test_outputs_of_drops_are_never_under_the_watch_prefix(client):
    client.lambda_.invoke("drops", drop_event(client, settings().watch_prefix + "incoming/x.mp4"))
    (job,) = all_jobs()
    assert not job.dest.startswith(f"s3://{settings().input_bucket}/")


def test_the_encode_handler_hands_off_what_its_budget_cannot_fit(client, media, scratch):
    """chalice.test gives the function a 3 s context: the 3 s clip cannot fit, so it goes long."""
    from chalicelib.jobs import records as jobs

    boto3.client("s3").upload_file(str(media["clip"]), settings().input_bucket, "src/clip.mp4")
    job = jobs.create_job(
        owner="root-admin", preset="h264_baseline_360p_600", source="src/clip.mp4", dest="out/"
    )
    bodies = [json.dumps({"job_id": int(job.id), "attempt": 1}), "not json"]
    event = client.events.generate_sqs_event(
        message_bodies=bodies, queue_name=settings().encode_queue
    )
    for number, record in enumerate(event["Records"]):
        record["messageId"] = f"m{number}"
    result = client.lambda_.invoke("encode", event)
    assert result.payload == {"batchItemFailures": []}
    stored = Job.get(job.id)
    assert (stored.status, stored.queue, stored.attempt) == ("queued", "long", 1)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().long_queue)["QueueUrl"]
    assert [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url)["Messages"]] == [
        {"job_id": int(job.id), "attempt": 1}
    ]
