"""The job graph against moto's AWS with real ffmpeg: fan-out, fan-in, cancel, restart,
lease recovery, a failing chunk, and a ladder read back from its HLS and DASH outputs."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.fleet import reconcile
from chalicelib.graph import encode_queue
from chalicelib.graph.runner import TaskRun
from chalicelib.graph.workspace import Workspace
from chalicelib.jobs import records as jobs
from chalicelib.jobs import task_lifecycle, tries
from chalicelib.jobs.task_lifecycle import TaskStatus
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.presets import catalog as presets
from chalicelib.store import messages, queues, storage
from chalicelib.store.models import Job
from tests.conftest import ADMIN
from tests.polling import wait_until

pytestmark = pytest.mark.slow
SECONDS = 7.2  # three GOPs of the seeded presets (72 frames at 30 fps)
FRAMES = 216


def upload(path: Path, key: str = "src/mezz.mp4") -> str:
    boto3.client("s3").upload_file(str(path), settings().input_bucket, key)
    return f"s3:///{key}"


def new_job(preset: str, source: str, **options) -> Job:
    return jobs.create_job(owner=ADMIN[0], preset=preset, source=source, dest="s3:///out/",
                           **({"options": options} if options else {}))  # fmt: skip


class Drain:
    """What Lambda's SQS trigger does: receive, run `encode_queue.process`, delete or keep."""

    def __init__(self, queue: str = "encode") -> None:
        self.queue = queue
        self.url = queues.queue_url(queue)
        self.outcomes: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def once(self, worker: str = "w") -> bool:
        answer = queues.sqs().receive_message(QueueUrl=self.url, MaxNumberOfMessages=1,
                                              VisibilityTimeout=60)  # fmt: skip
        received = answer.get("Messages", [])
        for m in received:
            outcome = encode_queue.process(m["Body"], worker_id=worker, queue=self.queue,
                                           deadline=None)  # fmt: skip
            with self.lock:
                self.outcomes.append((m["Body"], outcome.result.value))
            if outcome.delete_message:
                queues.sqs().delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            else:
                queues.sqs().change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=1
                )
        return bool(received)

    def until(self, done, seconds: float = 300, workers: int = 1) -> None:
        """Run `workers` loops at once (as Lambda runs several invocations) until `done()`."""
        stop = threading.Event()

        def loop(name: str) -> None:
            while not stop.is_set() and not done():
                if not self.once(name):
                    time.sleep(0.1)

        threads = [threading.Thread(target=loop, args=(f"w{i}",), daemon=True)
                   for i in range(workers)]  # fmt: skip
        for t in threads:
            t.start()
        try:
            wait_until(done, seconds, "the job to end")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)


def ended(job: Job):
    return lambda: Job.get(job.id).status in ("completed", "error", "cancelled")


def output_keys(prefix: str = "out/") -> set[str]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings().output_bucket,
                                                         Prefix=prefix)  # fmt: skip
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def fetch(key: str, path: Path) -> Path:
    boto3.client("s3").download_file(settings().output_bucket, key, str(path))
    return path


def _started_graph(preset: str, source: str, **options) -> tuple[Job, list[str]]:
    """A job planned and fanned out (the job's own message run), tasks' messages waiting."""
    job = new_job(preset, source, **options)
    drain = Drain()
    assert drain.once()  # the job's message: download, probe, plan, split, fan out
    bodies = []
    url = queues.queue_url("encode")
    while (
        answer := queues.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
    ):
        for m in answer:
            bodies.append(m["Body"])
            queues.sqs().delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # Encodes first, in chunk order (the fan-out sends the audio first; SQS keeps no order).
    task = lambda body: messages.parse(body).task  # noqa: E731
    bodies.sort(key=lambda body: (not task(body).startswith("encode"), task(body)))
    return Job.get(job.id), bodies


def test_fan_in_releases_exactly_one_assemble_under_duplicate_and_simultaneous_finishes(
    aws, chunky, mezzanine
):
    job, bodies = _started_graph("h264_baseline_360p_600", upload(mezzanine))
    assert job.status == "encoding" and job.lease_owner is None
    work = [messages.parse(b) for b in bodies]
    assert {m.task for m in work} == {
        t.task_id for t in task_lifecycle.tasks_of(int(job.id), 1)
    } - {"assemble"}
    # All but the last two, one by one.
    for m in work[:-2]:
        assert TaskRun(m, worker_id="one").run().result.value == "completed"
    # The last two at the same moment, each delivered twice.
    results: list[str] = []
    barrier = threading.Barrier(4)

    def finish(m):
        barrier.wait()
        results.append(TaskRun(m, worker_id=f"w-{threading.get_ident()}").run().result.value)

    threads = [threading.Thread(target=finish, args=(m,)) for m in work[-2:] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == ["completed", "completed", "skipped", "skipped"]
    stored = Job.get(job.id)
    assert stored.tasks_done == stored.tasks_total - 1
    url = queues.queue_url("encode")
    sent = queues.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assembles = [m for m in sent if messages.parse(m["Body"]).task == "assemble"]
    assert len(assembles) == 1
    # A finished task's message delivered once more changes nothing.
    assert TaskRun(work[0], worker_id="late").run().result.value == "skipped"
    assert TaskRun(messages.parse(assembles[0]["Body"]), worker_id="a").run().result.value == (
        "completed"
    )
    assert TaskRun(messages.parse(assembles[0]["Body"]), worker_id="b").run().result.value == (
        "skipped"
    )
    assert Job.get(job.id).status == "completed"


# veryslow at 720p: a 2.4 s chunk takes several seconds even on a quiet machine.
SLOW = '{"raw":["-vf scale=-2:720","-c:v libx264","-preset veryslow","-x264opts scenecut=0:open_gop=0:min-keyint=30:keyint=30","-b:v 2000k","-y"]}'


def _slow_preset() -> None:
    presets.create_preset(presets.PresetInput(name="slow", data=SLOW, output="slow.mp4"))


def test_cancel_reaches_every_running_task_within_five_seconds_and_restart_is_a_new_attempt(
    aws, chunky, mezzanine, monkeypatch
):
    monkeypatch.setenv("OE_CHUNK_SECONDS", "2.4")  # three equal chunks: none ends early
    _slow_preset()
    job, bodies = _started_graph("slow", upload(mezzanine))
    runs = [TaskRun(messages.parse(b), worker_id=f"w{i}") for i, b in enumerate(bodies[:3])]
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda r=r: outcomes.append(r.run().result.value))
               for r in runs]  # fmt: skip
    for t in threads:
        t.start()
    running = lambda: [t for t in task_lifecycle.tasks_of(int(job.id), 1) if t.status == "running"]  # noqa: E731
    wait_until(lambda: len(running()) == 3 and all(r.ffmpeg and r.ffmpeg.current for r in runs),
               60, "three tasks encoding")  # fmt: skip
    cancelled_at = time.monotonic()
    jobs.cancel_job(job.id)
    for t in threads:
        t.join(timeout=30)
    assert time.monotonic() - cancelled_at < 5
    assert outcomes == ["cancelled"] * 3
    assert running() == []
    assert Workspace(int(job.id), 1).names() == []
    assert output_keys() == set()

    jobs.restart_job(job.id)
    # The first attempt's messages change nothing now.
    for body in bodies[3:]:
        assert TaskRun(messages.parse(body), worker_id="old").run().result.value == "skipped"
    assert Job.get(job.id).status == "restarting"


def test_a_dead_tasks_lease_is_recovered_by_the_reconcile(aws, chunky, mezzanine, monkeypatch):
    job, bodies = _started_graph("h264_baseline_360p_600", upload(mezzanine))
    first = messages.parse(bodies[0])
    monkeypatch.setenv("OE_LEASE_SECONDS", "1")
    claimed = task_lifecycle.claim_task(int(job.id), 1, first.task, "dead-host", 1)
    assert claimed is not None  # ... and its host dies: no heartbeat renews the lease
    wait_until(lambda: task_lifecycle.task(int(job.id), 1, first.task).lease_expires < time.time(),
               10, "the task's lease to lapse")  # fmt: skip
    monkeypatch.setenv("OE_LEASE_SECONDS", "30")
    recovered = reconcile.recover_lapsed_tasks(time.time())
    assert recovered == [(int(job.id), first.task, "queued")]
    assert task_lifecycle.task(int(job.id), 1, first.task).status == TaskStatus.QUEUED
    for body in bodies[1:]:
        queues.send("encode", messages.parse(body))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed"
    # The lost try is on the task: tried twice, the first ended by its host's loss.
    (view,) = [v for v in jobs.task_views(stored) if v["id"] == first.task]
    assert view["tries"]["count"] == 2
    assert [t["ended"] for t in view["tries"]["ended"]] == [tries.LOST_HOST]


def run_with_a_broken_piece(source: str, tmp_path: Path) -> Job:
    """A chunked job whose second piece is not media: its encode fails as ffmpeg reads it."""
    job, bodies = _started_graph("h264_baseline_360p_600", source)
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"\x1a\x45\xdf\xa3" + b"not a matroska file" * 100)
    Workspace(int(job.id), 1).put(broken, "pieces/piece-0002.mkv")
    for body in bodies:
        queues.send("encode", messages.parse(body))
    Drain().until(ended(job), workers=2)
    return Job.get(job.id)


def test_a_failing_chunk_fails_the_job_with_its_error_and_ffmpeg_tail(
    aws, chunky, mezzanine, tmp_path
):
    job = stored = run_with_a_broken_piece(upload(mezzanine), tmp_path)
    assert stored.status == "error"
    assert stored.error["message"].startswith("task encode-0002-h264_baseline_360p_600.mp4: ffmpeg")
    assert stored.error["log"]
    failed = task_lifecycle.task(int(job.id), 1, "encode-0002-h264_baseline_360p_600.mp4")
    assert failed.status == TaskStatus.FAILED
    assert not any(t.status == "running" for t in task_lifecycle.tasks_of(int(job.id), 1))
    # The view never leaves a task of the failed job waiting: what never ran was cancelled.
    views = {v["id"]: v["status"] for v in jobs.task_views(stored)}
    assert views["assemble"] == "cancelled"
    assert set(views.values()) <= {"done", "failed", "cancelled"}, views
    wait_until(lambda: Workspace(int(job.id), 1).names() == [], 30, "intermediates removed")
    assert output_keys() == set()


def decodes(target: Path, stream: str) -> int:
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-protocol_whitelist", "file", "-i", str(target),
         "-map", stream, "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return (
        int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1]) if "frame=" in result.stderr else -1
    )


def named_by(manifest: Path) -> list[str]:
    """What a playlist, MPD or WebVTT index points at, relative to where it lies."""
    text = manifest.read_text()
    if manifest.suffix == ".m3u8":
        names = re.findall(r'URI="([^"]+)"', text)
        return names + [line for line in text.splitlines() if line and not line.startswith("#")]
    if manifest.suffix == ".mpd":
        return re.findall(r'(?:sourceURL|media)="([^"]+)"', text)
    return sorted({line.split("#", 1)[0] for line in text.splitlines() if "#xywh=" in line})


def test_a_ladder_job_publishes_hls_dash_mp4_and_thumbnails_that_ffmpeg_reads_back(
    aws, chunky, mezzanine, tmp_path, monkeypatch
):
    # At the moment each playlist or manifest is sent, everything it names is already stored.
    unpublished: list[str] = []
    send = storage.upload

    def watched(path: Path, location: storage.S3Location, *args, **kwargs) -> None:
        if path.suffix in (".m3u8", ".mpd", ".vtt"):
            folder = location.key.rsplit("/", 1)[0]
            for name in named_by(path):
                key = f"{folder}/{name}"
                if storage.head(storage.S3Location(location.bucket, key)) is None:
                    unpublished.append(f"{location.key} -> {key}")
        send(path, location, *args, **kwargs)

    monkeypatch.setattr(storage, "upload", watched)
    job = new_job("h264_ladder_hls_dash", upload(mezzanine))
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert not unpublished
    plan = jobs.public_view(stored)["plan"]
    # 360p source: 1080p, 720p and 480p are skipped; 360p is kept. GOP = 4 s segments.
    assert plan["renditions"] == 1 and plan["mode"] == "chunked"
    keys = output_keys()
    for name in ("master.m3u8", "manifest.mpd", "360p.mp4", "360p/index.m3u8", "audio/index.m3u8",
                 "thumbnails/poster.jpg", "thumbnails/0001.jpg", "thumbnails/sprite.jpg",
                 "thumbnails/sprite.vtt"):  # fmt: skip
        assert f"out/{name}" in keys, sorted(keys)
    assert not any("_openencoder" in k or "_ffmpeg" in k for k in keys)
    local = tmp_path / "out"
    for key in keys:
        fetch(key, (local / key.removeprefix("out/")).parent.mkdir(parents=True, exist_ok=True)
              or local / key.removeprefix("out/"))  # fmt: skip
    assert decodes(local / "master.m3u8", "0:v:0") == FRAMES
    assert decodes(local / "manifest.mpd", "0:v:0") == FRAMES
    assert decodes(local / "manifest.mpd", "0:a:0") != 0
    assert "#xywh=" in (local / "thumbnails" / "sprite.vtt").read_text()
    kinds = {o["kind"] for o in stored.outputs}
    assert {"playlist", "manifest", "video", "segments", "thumbnail", "thumbnails"} <= kinds
    # The numbered pictures are one summary (a long ladder has thousands), not a record each.
    (pictures,) = [o for o in stored.outputs if o["kind"] == "thumbnails"]
    numbered = [k for k in keys if re.fullmatch(r"out/thumbnails/\d{4}\.jpg", k)]
    assert pictures["key"] == "out/thumbnails/" and int(pictures["count"]) == len(numbered) >= 2
    assert not any(re.fullmatch(r"out/thumbnails/\d{4}\.jpg", o["key"]) for o in stored.outputs)


def test_priority_cost_sends_the_job_to_the_droplet_pool_when_it_is_cheaper(aws, chunky, mezzanine):
    boto3.client("ssm").put_parameter(
        Name=settings().do_token_parameter, Value="do-token", Type="SecureString", Overwrite=True
    )
    job = new_job("h264_baseline_360p_600", upload(mezzanine), priority="cost")
    url = queues.queue_url("encode")
    body = queues.sqs().receive_message(QueueUrl=url)["Messages"][0]["Body"]
    outcome = encode_queue.process(body, worker_id="lambda", queue="encode",
                                   deadline=time.monotonic() + 600)  # fmt: skip
    assert outcome.result.value == "handed_off"
    stored = Job.get(job.id)
    assert stored.queue == "long" and stored.status == "queued"
    plan = jobs.public_view(stored)["plan"]  # shown while the job waits for a droplet
    assert plan["mode"] == "droplet" and plan["estimate"]["cost_usd"] > 0
    long = queues.sqs().receive_message(QueueUrl=queues.queue_url("long")).get("Messages", [])
    assert [messages.parse(m["Body"]).job_id for m in long] == [int(job.id)]


SMALL_LADDER = {"ladder": {
    "video": {"codec": "h264", "preset": "ultrafast"},
    "renditions": [{"height": 360, "bitrate": "600k", "profile": "main"},
                   {"height": 240, "bitrate": "300k", "profile": "baseline"}],
    "audio": {"codec": "aac", "bitrate": "96k", "channels": 2},
    "segment_seconds": 2, "packaging": ["mp4"]}}  # fmt: skip


def test_with_one_invocation_at_a_time_each_chunk_makes_every_rendition_from_one_decode(
    aws, chunky, mezzanine, monkeypatch, tmp_path
):
    monkeypatch.setenv("OE_ENCODE_CONCURRENCY", "1")
    presets.create_preset(presets.PresetInput(name="two_rungs", data=json.dumps(SMALL_LADDER),
                                              output="ladder"))  # fmt: skip
    job = new_job("two_rungs", upload(mezzanine))
    Drain().until(ended(job))
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    tasks = jobs.task_views(stored)
    encodes = [t for t in tasks if t["kind"] == "encode"]
    # 7.2 s in 2 s segments, ~3 s chunks: 2 s chunks, one task each for both renditions.
    assert [t["id"] for t in encodes] == ["encode-0000", "encode-0001", "encode-0002"]
    assert all(t["renditions"] == ["360p", "240p"] and t["rendition"] is None for t in encodes)
    assert all(t["status"] == "done" and t["cpu_seconds"] > 0 for t in tasks)
    # The job's CPU time is what its tasks' ffmpeg runs took, and the split before them.
    total = sum(t["cpu_seconds"] for t in tasks)
    assert total <= float(stored.cpu_seconds) <= total + 5
    # Its actual cost: every task's invocation seconds at its memory, and the job's own run.
    cost = jobs.public_view(stored)["cost"]
    assert cost["estimate"]["usd"] > 0
    assert all(t["memory_mb"] == 3008 and t["seconds"] > 0 for t in tasks)
    billed = sum(t["seconds"] * 3008 / 1024 for t in tasks)
    assert cost["actual"]["requests"] == len(tasks) + 1
    assert billed < cost["actual"]["gb_seconds"] < billed + 3008 / 1024 * 60
    assert cost["actual"]["usd"] == pytest.approx(
        cost["actual"]["gb_seconds"] * 0.0000166667 + cost["actual"]["requests"] * 0.0000002,
        abs=1e-6,
    )
    for name in ("360p", "240p"):
        assert decodes(fetch(f"out/{name}.mp4", tmp_path / f"{name}.mp4"), "0:v:0") == FRAMES


def test_a_task_that_keeps_running_out_of_invocation_time_fails_the_job_instead_of_looping(
    aws, chunky, mezzanine, monkeypatch
):
    monkeypatch.setenv("OE_TASK_RETRIES", "1")
    _slow_preset()
    job, bodies = _started_graph("slow", upload(mezzanine))
    first = messages.parse(bodies[0])
    outcomes = []
    for _ in range(3):  # what Lambda would do: the released message comes back each time
        run = TaskRun(first, worker_id="lambda", deadline=time.monotonic() + 0.5)
        outcomes.append(run.run().result.value)
        if outcomes[-1] != "released":
            break
    assert outcomes == ["released", "error"]  # one retry, then the job fails
    stored = Job.get(job.id)
    assert stored.status == "error"
    assert "ran out of the invocation's time 2 times" in stored.error["message"]
    assert task_lifecycle.task(int(job.id), 1, first.task).status == TaskStatus.FAILED
    (view,) = [v for v in jobs.task_views(stored) if v["id"] == first.task]
    assert [t["ended"] for t in view["tries"]["ended"]] == ["too long for this host"] * 2


@pytest.mark.parametrize("fail_on", [1, 2])
def test_a_fan_out_that_breaks_keeps_the_pieces_its_sent_tasks_read(
    aws, chunky, mezzanine, monkeypatch, fail_on
):
    """Pieces go with their tasks' messages; once one is out, a task may still read them."""
    from chalicelib.graph import build

    calls = []
    send = build.send

    def breaking(job, tasks, queue):
        calls.append([t.id for t in tasks])
        if len(calls) == fail_on:
            raise RuntimeError("the queue broke")
        send(job, tasks, queue)

    monkeypatch.setattr(build, "send", breaking)
    job = new_job("h264_baseline_360p_600", upload(mezzanine))
    Drain().once()  # the job's own run: plan, split, fan out (it breaks)
    names = Workspace(int(job.id), 1).names()
    assert calls[0] == ["audio"]  # the audio's piece goes first
    if fail_on == 1:
        assert names == []  # nothing was sent: nobody reads the pieces
    else:
        assert "pieces/audio.mka" in names  # the audio task was sent: its piece stays
