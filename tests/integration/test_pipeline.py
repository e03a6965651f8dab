"""The encode pipeline with real ffmpeg on generated clips, against moto's AWS."""

from __future__ import annotations

import json
import socket
import threading
import time

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.graph.encode_queue import run_message
from chalicelib.graph.pipeline import JobRun
from chalicelib.jobs import records as jobs
from chalicelib.media.probe import fill_video_bit_rate, probe
from chalicelib.presets import catalog as presets
from chalicelib.store.models import Job
from tests.conftest import ADMIN
from tests.polling import wait_until

pytestmark = pytest.mark.slow


def upload(path, key: str) -> str:
    boto3.client("s3").upload_file(str(path), settings().input_bucket, key)
    return f"s3:///{key}"


def new_job(preset: str, source: str, dest: str = "s3:///out/clip/") -> Job:
    return jobs.create_job(owner=ADMIN[0], preset=preset, source=source, dest=dest)


def message(job: Job) -> str:
    return json.dumps({"job_id": int(job.id), "attempt": int(job.attempt)})


def output_objects(prefix: str = "out/") -> dict[str, dict]:
    answer = boto3.client("s3").list_objects_v2(Bucket=settings().output_bucket, Prefix=prefix)
    return {o["Key"]: o for o in answer.get("Contents", [])}


EXPECTED = {
    # preset: (codec, profile, height, video kb/s)
    "h264_baseline_360p_600": ("h264", "Constrained Baseline", 360, 600),
    "h264_main_480p_1000": ("h264", "Main", 480, 1000),
    "h264_main_720p_3000": ("h264", "Main", 720, 3000),
    "h264_main_1080p_6000": ("h264", "Main", 1080, 6000),
    "webm_vp9_720p_3000": ("vp9", "Profile 0", 720, 3000),
}


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_each_seeded_preset_produces_what_it_promises(aws, media, scratch, tmp_path, preset):
    job = new_job(preset, upload(media["clip"], "src/clip.mp4"))
    outcome = run_message(message(job), worker_id="test")
    assert outcome.result == "completed", outcome.message
    job.refresh()
    assert job.status == "completed" and job.progress == 100
    output_name = presets.get_preset_by_name(preset).output
    key = f"out/clip/{output_name}"
    assert key in output_objects()
    local = tmp_path / output_name
    boto3.client("s3").download_file(settings().output_bucket, key, str(local))
    info = fill_video_bit_rate(local, probe(local))
    codec, profile, height, kbps = EXPECTED[preset]
    assert info.video.codec == codec
    assert info.video.profile == profile
    assert info.video.height == height
    assert abs(info.duration - 3.0) <= 0.1
    assert abs(info.video.bit_rate / 1000 - kbps) <= 0.15 * kbps, info.video.bit_rate
    recorded = job.outputs[0]
    assert recorded["key"] == key and recorded["height"] == height and recorded["codec"] == codec
    content_type = boto3.client("s3").head_object(Bucket=settings().output_bucket, Key=key)[
        "ContentType"
    ]
    assert content_type == ("video/webm" if output_name.endswith(".webm") else "video/mp4")
    assert job.probe["duration"] == pytest.approx(3.0, abs=0.1)
    assert not any(scratch.iterdir())


@pytest.mark.parametrize(
    "source, message_part",
    [
        ("corrupt", "not a readable media file"),
        ("zero", "empty"),
        ("text", "not a readable media file"),
        ("audio", "no video stream"),
    ],
)
def test_bad_sources_end_in_error_with_a_message_and_no_scratch(
    aws, media, scratch, source, message_part
):
    job = new_job("h264_baseline_360p_600", upload(media[source], f"src/{source}.mp4"))
    outcome = run_message(message(job), worker_id="test")
    assert outcome.result == "error"
    job.refresh()
    assert job.status == "error"
    assert message_part in job.error["message"]
    assert job.lease_owner is None
    assert output_objects() == {}
    assert not any(scratch.iterdir())


def test_missing_source_is_an_error_not_a_retry(aws, scratch):
    job = new_job("h264_baseline_360p_600", "s3:///src/never-uploaded.mp4")
    assert run_message(message(job), worker_id="test").result == "error"
    job.refresh()
    assert "does not exist" in job.error["message"]


@pytest.fixture
def listener():
    """A loopback TCP server that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    hits = []

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                hits.append(conn.recv(1024))
                conn.close()
            except OSError:
                continue

    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_playlists_pointing_elsewhere_are_not_followed(aws, scratch, tmp_path, listener, kind):
    port, hits = listener
    if kind == "hls":
        text = (f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nhttp://127.0.0.1:{port}/seg.ts\n"
                "#EXTINF:4,\n/etc/passwd\n#EXT-X-ENDLIST\n")  # fmt: skip
    else:
        text = f"ffconcat version 1.0\nfile /etc/passwd\nfile http://127.0.0.1:{port}/x.mp4\n"
    source = tmp_path / f"{kind}.mp4"
    source.write_text(text)
    job = new_job("h264_baseline_360p_600", upload(source, f"src/{kind}.mp4"))
    assert run_message(message(job), worker_id="test").result == "error"
    job.refresh()
    assert "not a readable media file" in job.error["message"]
    assert hits == []
    assert output_objects() == {}


def test_the_same_message_twice_encodes_once(aws, media, scratch):
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    body = message(job)
    assert run_message(body, worker_id="a").result == "completed"
    first = Job.get(job.id).updated_date
    assert run_message(body, worker_id="b").result == "skipped"
    assert Job.get(job.id).updated_date == first


def test_a_second_delivery_while_the_first_holds_the_lease_changes_nothing(aws, media, scratch):
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    holder = JobRun(int(job.id), 1, worker_id="holder")
    assert holder.claim()
    assert run_message(message(job), worker_id="intruder").result == "skipped"
    assert Job.get(job.id).lease_owner == "holder"


def test_a_dead_workers_job_is_recovered_after_its_lease_expires(aws, media, scratch, monkeypatch):
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    monkeypatch.setenv("OE_LEASE_SECONDS", "1")
    dead = JobRun(int(job.id), 1, worker_id="dead")
    assert dead.claim()  # ... and the worker dies here: no heartbeat ever renews the lease.
    wait_until(lambda: Job.get(job.id).lease_expires < time.time(), 10, "the lease to expire")
    outcome = run_message(message(job), worker_id="rescuer")
    assert outcome.result == "completed"
    assert Job.get(job.id).status == "completed"


def test_messages_of_an_older_attempt_are_ignored(aws, media, scratch):
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    jobs.cancel_job(job.id)
    jobs.restart_job(job.id)
    assert (
        run_message(json.dumps({"job_id": int(job.id), "attempt": 1}), worker_id="w").result
        == "skipped"
    )
    assert Job.get(job.id).status == "restarting"
    assert (
        run_message(json.dumps({"job_id": int(job.id), "attempt": 2}), worker_id="w").result
        == "completed"
    )


SLOW_PRESET = '{"raw":["-vf scale=-2:1080","-c:v libx264","-preset veryslow","-b:v 8000k","-y"]}'


def test_cancel_during_encode_kills_ffmpeg_and_cleans_up(aws, media, scratch):
    presets.create_preset(presets.PresetInput(name="slow", data=SLOW_PRESET, output="slow.mp4"))
    job = new_job("slow", upload(media["long"], "src/long.mp4"))
    result = {}
    runner = threading.Thread(
        target=lambda: result.update(o=run_message(message(job), worker_id="w"))
    )
    runner.start()
    wait_until(lambda: Job.get(job.id).status == "encoding", 60, "encoding to start")
    wait_until(lambda: Job.get(job.id).progress > 0, 30, "progress to be reported")
    cancelled_at = time.monotonic()
    jobs.cancel_job(job.id)
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert time.monotonic() - cancelled_at < 5
    assert result["o"].result == "cancelled"
    job.refresh()
    assert job.status == "cancelled" and job.lease_owner is None
    assert output_objects() == {}
    assert not any(scratch.iterdir())


def test_cancel_during_download_ends_cancelled_with_nothing_left(aws, media, scratch):
    job = new_job("h264_baseline_360p_600", upload(media["long"], "src/long.mp4"))
    run = JobRun(int(job.id), 1, worker_id="w")
    assert run.claim()
    assert Job.get(job.id).status == "downloading"
    jobs.cancel_job(job.id)  # arrives while the job is in its download phase
    outcome = run.execute()
    assert outcome.result == "cancelled"
    assert Job.get(job.id).status == "cancelled"
    assert output_objects() == {}
    assert not any(scratch.iterdir())


def test_progress_is_written_while_encoding(aws, media, scratch):
    presets.create_preset(presets.PresetInput(name="slow", data=SLOW_PRESET, output="slow.mp4"))
    job = new_job("slow", upload(media["long"], "src/long.mp4"))
    seen = []
    runner = threading.Thread(target=lambda: run_message(message(job), worker_id="w"))
    runner.start()
    wait_until(lambda: Job.get(job.id).status == "encoding", 60, "encoding")

    def sample() -> bool:
        seen.append(Job.get(job.id))
        return len({j.progress for j in seen}) >= 3 and any(j.fps and j.speed for j in seen)

    wait_until(sample, 60, "progress with fps and speed")
    jobs.cancel_job(job.id)
    runner.join(timeout=30)
    moving = [j for j in seen if j.progress]
    assert moving and all(0 < j.progress <= 100 for j in moving)
    assert sorted(j.progress for j in moving) == [j.progress for j in moving]  # never goes back


def test_a_job_too_long_for_the_budget_goes_to_the_long_queue(aws, media, scratch, monkeypatch):
    monkeypatch.setenv("OE_ENCODE_SPEED", "0.001")  # pretend this host encodes very slowly
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    outcome = run_message(message(job), worker_id="lambda", deadline=time.monotonic() + 300)
    assert outcome.result == "handed_off"
    job.refresh()
    assert job.status == "queued" and job.queue == "long" and job.lease_owner is None
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().long_queue)["QueueUrl"]
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url).get("Messages", [])]
    assert bodies == [{"job_id": int(job.id), "attempt": 1}]
    assert not any(scratch.iterdir())


def test_transient_failures_are_retried_a_bounded_number_of_times(aws, media, scratch, monkeypatch):
    from chalicelib.graph import encode_queue
    from chalicelib.store import queues
    from tests.aws_faults import SERVER_ERROR, Rule, injected

    monkeypatch.setenv("OE_LEASE_SECONDS", "2")  # how long a run retries before giving up
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    queues.sqs().purge_queue(QueueUrl=queues.queue_url("encode"))
    every_upload = Rule("s3", "PutObject", times=10**6, error=SERVER_ERROR)
    with injected(every_upload):
        first = encode_queue.process(message(job), worker_id="w", queue="encode", deadline=None)
        assert first.result == "retry" and first.delay > 0
        stored = Job.get(job.id)
        assert (stored.status, stored.retries, stored.lease_owner) == ("queued", 1, None)
        attributes = queues.sqs().get_queue_attributes(
            QueueUrl=queues.queue_url("encode"),
            AttributeNames=["ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # re-sent with a back-off
        outcomes = [run_message(message(job), worker_id="w").result for _ in range(3)]
    assert outcomes == ["retry", "retry", "error"]
    stored = Job.get(job.id)
    assert stored.status == "error" and "gave up after 3 retries" in stored.error["message"]
    assert "InternalServerError" in stored.error["message"]
    assert every_upload.failed > 4  # botocore's own retries, then ours, on every run
    assert not any(scratch.iterdir())


def test_a_missing_output_bucket_fails_at_once_with_an_actionable_message(aws, media, scratch):
    job = new_job("h264_baseline_360p_600", upload(media["clip"], "src/clip.mp4"))
    s3 = boto3.client("s3")
    s3.delete_bucket_lifecycle(Bucket=settings().output_bucket)
    s3.delete_bucket(Bucket=settings().output_bucket)
    outcome = run_message(message(job), worker_id="w")
    assert outcome.result == "error"
    stored = Job.get(job.id)
    assert stored.status == "error" and stored.retries == 0  # no second encode
    text = stored.error["message"]
    assert "bucket does not exist" in text and settings().output_bucket in text
    assert str(scratch) not in text and str(scratch) not in stored.error["log"]
    assert not any(scratch.iterdir())
