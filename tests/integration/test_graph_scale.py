"""A 2-hour 1080p30 ladder's graph on moto, from synthetic probe facts (no real media): the
items stay far under DynamoDB's 400 KB, the fan-out is batched, every task completes once
under concurrent finishes with one assemble released, and a cancel reaches every task."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest

from chalicelib.config import settings
from chalicelib.graph import build, kinds, packaging, pipeline
from chalicelib.graph.plan import Kind, Plan
from chalicelib.graph.run import Result
from chalicelib.graph.runner import TaskRun
from chalicelib.jobs import records as jobs
from chalicelib.jobs import task_lifecycle
from chalicelib.jobs.task_lifecycle import TaskStatus
from chalicelib.media import steps
from chalicelib.media.probe import MediaInfo, Stream
from chalicelib.store import messages, queues
from chalicelib.store.item_size import ITEM_LIMIT_BYTES, item_bytes
from chalicelib.store.models import Job
from tests import moto_state
from tests.conftest import ADMIN
from tests.polling import wait_until

pytestmark = pytest.mark.slow  # hundreds of tasks' writes on moto: minutes, not seconds
# What probing a 2-hour 1080p30 mezzanine with stereo AAC would find.
TWO_HOURS = MediaInfo(
    container="mov,mp4,m4a,3gp,3g2,mj2",
    duration=7200.0,
    bit_rate=20_000_000,
    streams=[
        Stream(0, "video", "h264", "High", 1920, 1080, 30.0, 19_800_000),
        Stream(1, "audio", "aac", "LC", bit_rate=192_000, sample_rate=48_000),
    ],
)
# Room to spare: every item stays under a tenth of DynamoDB's limit.
ITEM_BUDGET = ITEM_LIMIT_BYTES // 10


def stand_in_pieces(source: Path, p: Plan, folder: Path, run: Any) -> Iterator[build.Piece]:
    """`build.pieces` without ffmpeg: the same pieces in the same order, a byte each."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = tuple(t for t in p.work_tasks if t.kind is Kind.AUDIO)
    if audio:
        path = folder / "audio.mka"
        path.write_bytes(b"a")
        yield build.Piece(path, build.AUDIO_PIECE, audio)
    by_chunk: dict[int, list[Any]] = {}
    for t in p.work_tasks:
        if t.chunk is not None:
            by_chunk.setdefault(t.chunk, []).append(t)
    for chunk in p.chunks:
        path = folder / steps.piece_name(chunk.index)
        path.write_bytes(b"v")
        yield build.Piece(path, f"pieces/{path.name}", tuple(by_chunk.get(chunk.index, ())))


@dataclass
class Planned:
    job: Job
    plan: Plan
    calls: Counter  # AWS operations the fan-out made
    sent: Counter  # task id → messages for it
    bodies: list[str]


class Calls:
    """Counts the AWS operations made while it is on (every botocore client), and keeps the
    bodies of the messages sent to the encode queue."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter = Counter()
        self.bodies: list[str] = []
        self.on = False
        encode = queues.queue_url("encode")
        original = botocore.client.BaseClient._make_api_call

        def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if self.on and params.get("QueueUrl", encode) == encode:
                self.counts[operation] += 1
                if operation == "SendMessageBatch":
                    self.bodies += [e["MessageBody"] for e in params["Entries"]]
                elif operation == "SendMessage":
                    self.bodies.append(params["MessageBody"])
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)

    def tasks(self) -> Counter:
        return Counter(messages.parse(b).task for b in self.bodies)


def receive_all(url: str) -> list[str]:
    bodies = []
    while (
        answer := queues.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
    ):
        for m in answer:
            bodies.append(m["Body"])
            queues.sqs().delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _plan_two_hours(monkeypatch: pytest.MonkeyPatch) -> tuple[int, Counter, Counter, tuple]:
    boto3.client("s3").put_object(Bucket=settings().input_bucket, Key="src/two-hours.mp4",
                                  Body=b"stand-in")  # fmt: skip
    job = jobs.create_job(owner=ADMIN[0], preset="h264_ladder_hls_dash",
                          source="s3:///src/two-hours.mp4", dest="s3:///out/")  # fmt: skip
    receive_all(queues.queue_url("encode"))  # the job's own message: its run is driven here
    calls = Calls(monkeypatch)
    calls.on = True
    outcome = pipeline.JobRun(int(job.id), 1, worker_id="planner").run()
    calls.on = False
    assert outcome.result is Result.FANNED_OUT, outcome
    return int(job.id), calls.counts.copy(), calls.tasks(), tuple(calls.bodies)


@pytest.fixture
def planned(aws, scratch, monkeypatch) -> Planned:
    """The seeded 4-rung H.264 ladder's job for a 2-hour source, planned and fanned out by
    its own run: a stand-in source is downloaded, the probe's facts are TWO_HOURS. Planned
    once per worker; the other tests start from a copy of what it left (moto_state.kept)."""
    monkeypatch.setattr(pipeline, "probe", lambda path: TWO_HOURS)
    monkeypatch.setattr(build, "pieces", stand_in_pieces)
    monkeypatch.setattr(build, "FAN_OUT_LINGER_SECONDS", 3600.0)  # full batches: exact counts
    job_id, counts, sent, bodies = moto_state.kept(
        "a 2-hour ladder, fanned out", lambda: _plan_two_hours(monkeypatch)
    )
    stored = Job.get(job_id)
    return Planned(stored, build.Graph.of(stored).plan, Counter(counts), Counter(sent),
                   list(bodies))  # fmt: skip


def raw_job(job_id: int) -> dict[str, Any]:
    table = settings().table("jobs")
    return boto3.client("dynamodb").get_item(TableName=table, Key={"id": {"N": str(job_id)}})[
        "Item"
    ]


def raw_tasks(job_id: int) -> list[dict[str, Any]]:
    pages = boto3.client("dynamodb").get_paginator("query").paginate(
        TableName=settings().table("tasks"), KeyConditionExpression="job_id = :j",
        ExpressionAttributeValues={":j": {"N": str(job_id)}},
    )  # fmt: skip
    return [item for page in pages for item in page["Items"]]


def test_a_two_hour_ladder_fans_out_in_batches_with_every_item_far_under_400_kb(planned):
    p, job = planned.plan, planned.job
    work = p.work_tasks
    assert len(p.chunks) == 360 and len(p.renditions) == 4 and len(p.tasks) >= 700
    assert job.status == "encoding" and int(job.tasks_total) == len(p.tasks)
    # Every work task's message exactly once; the assemble's waits for the fan-in.
    assert planned.sent == Counter({t.id: 1 for t in work})
    # Batched: ten messages per SendMessageBatch, 25 items per BatchWriteItem (the first
    # piece goes alone, and the last batch is short).
    assert planned.calls["SendMessageBatch"] <= math.ceil(len(work) / 10) + 1
    assert planned.calls["BatchWriteItem"] <= math.ceil(len(p.tasks) / 25) + 3
    assert planned.calls["SendMessage"] == 0
    job_bytes = item_bytes(raw_job(int(job.id)))
    plan_bytes = item_bytes({"plan": raw_job(int(job.id))["plan"]})
    tasks = raw_tasks(int(job.id))
    assert len(tasks) == len(p.tasks)
    largest = max(item_bytes(t) for t in tasks)
    print(f"\n2 h 1080p30 ladder: {len(p.tasks)} tasks, {len(planned.bodies)} messages in "
          f"{planned.calls['SendMessageBatch']} SendMessageBatch, "
          f"{planned.calls['BatchWriteItem']} BatchWriteItem; plan {plan_bytes} B, "
          f"job item {job_bytes} B, largest task item {largest} B")  # fmt: skip
    assert plan_bytes < 4 * 1024
    assert job_bytes < ITEM_BUDGET
    assert largest < 2 * 1024


def on_hosts(count: int, bodies: list[str], run: Any) -> None:
    """`run(body, host)` for every body, on `count` hosts at once (as Lambda runs them)."""
    todo: queue.Queue[str] = queue.Queue()
    for body in bodies:
        todo.put(body)

    def host(name: str) -> None:
        while True:
            try:
                body = todo.get_nowait()
            except queue.Empty:
                return
            run(body, name)

    hosts = [threading.Thread(target=host, args=(f"h{i}",)) for i in range(count)]
    for t in hosts:
        t.start()
    for t in hosts:
        t.join(timeout=600)


def test_every_task_completes_once_under_concurrent_finishes_and_one_assemble_is_released(
    planned, monkeypatch
):
    job, work = planned.job, planned.plan.work_tasks
    packages = packaging.package_ids(planned.plan)
    assert len(packages) == 4
    job_id, share = int(job.id), 99.0 / len(work)
    counted: Counter = Counter()
    released: list[str] = []
    lock = threading.Lock()

    def finish(body: str, host: str) -> None:
        """A task's claim and its done write (the fan-in), as TaskRun makes them."""
        task_id = messages.parse(body).task
        item = task_lifecycle.claim_task(job_id, 1, task_id, host, 60)
        if item is None:
            with lock:
                counted["skipped"] += 1
            return
        lease = task_lifecycle.TaskLease(job_id, 1, task_id, host, 60)
        done, total = task_lifecycle.finish_task(lease, [f"out/{task_id}.mp4"], share, 2.0,
                                                 1.5, 3008)  # fmt: skip
        with lock:
            counted["done"] += 1
        # The work's last finisher releases the packages (the last package, the assemble).
        if done >= total - 1 - len(packages) and all(
            task_lifecycle.release(job_id, 1, t, by=task_id) for t in packages
        ):
            with lock:
                released.append(task_id)

    # Every message, and a duplicate of every tenth (SQS delivers at least once), at once.
    on_hosts(8, planned.bodies + planned.bodies[::10], finish)
    assert counted == Counter(done=len(work), skipped=len(planned.bodies[::10]))
    assert len(released) == 1  # exactly one finisher releases the packages
    stored = Job.get(job.id)
    assert int(stored.tasks_done) == len(work) == int(stored.tasks_total) - 1 - len(packages)
    # Each task's run is billed with its count, and the job's own run (the fan-out) once.
    assert int(stored.requests) == len(work) + 1
    tasks_gb = len(work) * 2.0 * 3008 / 1024
    assert tasks_gb < float(stored.gb_seconds) < tasks_gb + 300 * 3008 / 1024
    items = task_lifecycle.tasks_of(job_id, 1)
    assert Counter(t.status for t in items) == Counter(
        {"done": len(work), "queued": len(packages), "waiting": 1}
    )
    largest = max(item_bytes(t) for t in raw_tasks(job_id))
    print(f"\nlargest task item done: {largest} B")
    assert largest < 2 * 1024
    # Finished tasks' messages once more, through the runner: nothing runs, nothing counts,
    # and only the releaser's (its host may have died before sending) sends the packages'.
    sends: list[str] = []
    monkeypatch.setattr(TaskRun, "_send", lambda self, task_id, delay=0: sends.append(task_id))
    by_task = {messages.parse(b).task: b for b in planned.bodies}
    for task_id in [t.id for t in work[:20] if t.id != released[0]] + released:
        late = TaskRun(messages.parse(by_task[task_id]), worker_id="late").run()
        assert late.result is Result.SKIPPED
    assert sends == list(packages)
    assert int(Job.get(job.id).tasks_done) == len(work)


def test_a_cancel_reaches_every_task_of_the_plan_within_five_seconds(planned, monkeypatch):
    monkeypatch.setenv("OE_LEASE_SECONDS", "60")
    job, work = planned.job, planned.plan.work_tasks
    # A dozen tasks really running (their media waits for a stop, as ffmpeg would be killed),
    # and 88 more claimed by hosts that renew their leases at their next beat.
    monkeypatch.setattr(kinds.TaskMedia, "work", _until_stopped)
    by_task = {messages.parse(b).task: b for b in planned.bodies}
    live = [TaskRun(messages.parse(by_task[t.id]), worker_id=f"live{i}")
            for i, t in enumerate(work[:12])]  # fmt: skip
    outcomes: list[Result] = []
    threads = [threading.Thread(target=lambda r=r: outcomes.append(r.run().result)) for r in live]
    for t in threads:
        t.start()
    leases: list[task_lifecycle.TaskLease] = []

    def claim(body: str, host: str) -> None:
        task_id = messages.parse(body).task
        assert task_lifecycle.claim_task(int(job.id), 1, task_id, host, 60) is not None
        leases.append(task_lifecycle.TaskLease(int(job.id), 1, task_id, host, 60))

    on_hosts(8, [by_task[t.id] for t in work[12:100]], claim)
    running = lambda: [t for t in task_lifecycle.tasks_of(int(job.id), 1) if t.status == "running"]  # noqa: E731
    wait_until(lambda: len(running()) == 100, 60, "a hundred tasks running")
    cancelled_at = time.monotonic()
    jobs.cancel_job(job.id)
    for t in threads:
        t.join(timeout=30)
    assert time.monotonic() - cancelled_at < 5
    assert outcomes == [Result.CANCELLED] * len(live)
    # Each other host's next renewal (one beat away) finds the job cancelled, and stops.
    lost = 0
    for lease in leases:
        try:
            task_lifecycle.renew_task(lease, {"progress": 50})
        except task_lifecycle.Lost:
            lost += 1
    assert lost == len(leases)
    # And a waiting task's message that arrives now runs nothing (every tenth tried).
    for t in work[100::10]:
        late = TaskRun(messages.parse(by_task[t.id]), worker_id="late").run()
        assert late.result is Result.SKIPPED
    assert Job.get(job.id).status == "cancelled"
    statuses = Counter(t.status for t in task_lifecycle.tasks_of(int(job.id), 1))
    assert statuses[TaskStatus.CANCELLED.value] == len(live)


def _until_stopped(self: kinds.TaskMedia, spec: Any) -> list[str]:
    stops = self.run.stops  # the run's ffmpeg runner carries its stops
    while not stops.wanted():
        time.sleep(0.05)
    stops.check()
    return []
