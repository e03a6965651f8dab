"""The reconcile: its decision as a table, the lock, lease recovery, and a run against
the fake DigitalOcean and moto."""

from __future__ import annotations

import json
import logging
import time

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.fleet import pool_lock, reconcile
from chalicelib.fleet.reconcile import Beat, Droplet, Limits, decide
from chalicelib.jobs import records as jobs
from chalicelib.store import queues
from chalicelib.store.models import Job, WorkerState
from tests.conftest import ADMIN
from tests.fake_digitalocean import FakeDigitalOcean

NOW = 1_800_000_000.0
LIMITS = Limits(minimum=0, maximum=3, jobs_per_droplet=1, hourly_budget=1.0, hourly_price=0.125,
                idle_grace=600, boot_timeout=900)  # fmt: skip


def droplet(i: int, age: float = 3600) -> Droplet:
    return Droplet(i, NOW - age)


def beat(i: int, state: str = "idle", idle: float = 0, seen: float = 5) -> Beat:
    return Beat(i, state, NOW - seen, NOW - idle if state == "idle" else None)


CASES = [
    # id, backlog, droplets, beats, leased, limits, creates, removes
    ("empty queue, no droplets", 0, [], [], set(), LIMITS, 0, []),
    ("backlog starts droplets", 2, [], [], set(), LIMITS, 2, []),
    ("never more than the maximum", 9, [], [], set(), LIMITS, 3, []),
    ("minimum kept without work", 0, [], [], set(), Limits(1, 3, 1, 1.0, 0.125, 600, 900), 1, []),
    ("jobs per droplet", 5, [], [], set(), Limits(0, 9, 2, 9.0, 0.125, 600, 900), 3, []),
    ("hourly budget caps the pool", 9, [], [], set(), Limits(0, 9, 1, 0.3, 0.125, 600, 900), 2, []),
    ("enough droplets already", 2, [droplet(1), droplet(2)], [beat(1, "busy"), beat(2, "busy")], set(), LIMITS, 0, []),
    ("idle past the grace is removed", 0, [droplet(1)], [beat(1, idle=700)], set(), LIMITS, 0, [1]),
    ("idle within the grace stays", 0, [droplet(1)], [beat(1, idle=100)], set(), LIMITS, 0, []),
    ("a busy droplet stays", 0, [droplet(1)], [beat(1, "busy")], set(), LIMITS, 0, []),
    ("a live lease keeps a droplet", 0, [droplet(1)], [beat(1, idle=9999)], {1}, LIMITS, 0, []),
    ("longest idle goes first", 1, [droplet(1), droplet(2)], [beat(1, idle=700), beat(2, idle=900)], set(), LIMITS, 0, [2]),
    ("never reported within the boot timeout: replaced", 1, [droplet(1, age=1000)], [], set(), LIMITS, 1, [1]),
    ("still booting: kept", 1, [droplet(1, age=100)], [], set(), LIMITS, 0, []),
    ("worker went silent: replaced", 1, [droplet(1)], [beat(1, "busy", seen=1000)], set(), LIMITS, 1, [1]),
    ("over budget: idle ones go", 0, [droplet(1), droplet(2)], [beat(1, idle=800), beat(2, idle=700)], set(),
     Limits(1, 3, 1, 0.2, 0.125, 600, 900), 0, [1]),
]  # fmt: skip


@pytest.mark.parametrize(
    "backlog, droplets, beats, leased, limits, creates, removes",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(backlog, droplets, beats, leased, limits, creates, removes):
    plan = decide(
        backlog=backlog,
        droplets=droplets,
        beats=beats,
        leased_droplets=leased,
        limits=limits,
        now=NOW,
    )
    assert plan.create == creates
    assert sorted(plan.remove) == sorted(removes)
    assert plan.reasons or (creates == 0 and not removes)


def test_two_runs_cannot_hold_the_lock_at_once(aws):
    first = pool_lock.acquire(NOW)
    assert first is not None
    assert pool_lock.acquire(NOW + 1) is None
    assert (
        pool_lock.acquire(NOW + pool_lock.LOCK_SECONDS + 1) is not None
    )  # expired locks are taken
    pool_lock.release(first)  # the old holder cannot release the new holder's lock
    assert pool_lock.acquire(NOW + pool_lock.LOCK_SECONDS + 2) is None


def leased_job(expires: float, worker: str = "worker:dead:1") -> Job:
    job = jobs.create_job(
        owner=ADMIN[0], preset="h264_baseline_360p_600", source="src/x.mp4", dest="out/"
    )
    job.update(
        actions=[
            Job.status.set("encoding"),
            Job.lease_owner.set(worker),
            Job.lease_expires.set(int(expires)),
        ]
    )
    return job


def encode_queue_bodies() -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().encode_queue)["QueueUrl"]
    return [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]


def test_expired_leases_are_requeued_as_the_same_attempt(aws):
    dead = leased_job(time.time() - 10)
    alive = leased_job(time.time() + 300, worker="worker:alive:1")
    encode_queue_bodies()  # drop the creation messages
    assert reconcile.recover_expired_leases(time.time()) == [(int(dead.id), "requeued")]
    stored = Job.get(dead.id)
    assert (stored.status, stored.attempt, stored.lease_owner, stored.retries) == (
        "queued",
        1,
        None,
        1,
    )
    assert Job.get(alive.id).status == "encoding"
    assert encode_queue_bodies() == [{"job_id": int(dead.id), "attempt": 1}]


def test_a_job_whose_worker_keeps_dying_ends_in_error(aws):
    job = leased_job(time.time() - 10)
    job.update(actions=[Job.retries.set(reconcile.MAX_LEASE_RECOVERIES)])
    assert reconcile.recover_expired_leases(time.time()) == [(int(job.id), "error")]
    stored = Job.get(job.id)
    assert stored.status == "error" and "worker was lost" in stored.error["message"]


@pytest.fixture
def fake_do(aws, monkeypatch):
    fake = FakeDigitalOcean("reconcile-token")
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake.start())
    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=settings().do_token_parameter, Value="reconcile-token", Type="SecureString"
    )
    ssm.put_parameter(
        Name=settings().api_url_parameter, Type="String", Value="https://api.test/api"
    )
    yield fake
    fake.stop()


def test_a_run_sizes_the_pool_to_the_long_queue_and_drains_idle_droplets(fake_do, caplog):
    for job_id in (101, 102):
        queues.send_job("long", job_id, 1)
    with caplog.at_level(logging.INFO, logger="openencoder.reconcile"):
        plan = reconcile.run()
    assert plan.create == 2
    assert len(fake_do.droplets) == 2
    logged = [json.loads(r.message) for r in caplog.records if r.message.startswith("{")]
    assert any(
        entry.get("decision") == "droplets" and entry["inputs"]["backlog"] == 2 for entry in logged
    )
    # The queue empties; the workers report idle for longer than the grace: both go.
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=queues.queue_url("long"))
    long_ago = time.time() - settings().idle_grace_seconds - 60
    for i, droplet_id in enumerate(fake_do.droplets):
        WorkerState(
            f"worker:{i}",
            droplet_id=droplet_id,
            state="idle",
            last_seen=time.time(),
            idle_since=long_ago,
        ).save()
    plan = reconcile.run()
    assert plan.create == 0 and len(plan.remove) == 2
    assert fake_do.droplets == {}


def test_a_run_without_digitalocean_still_recovers_leases(aws):
    job = leased_job(time.time() - 10)
    assert reconcile.run() is None
    assert Job.get(job.id).status == "queued"


def test_the_schedule_is_registered_on_the_app(aws):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as client:
        job = leased_job(time.time() - 10)
        client.lambda_.invoke("reconcile", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))  # fmt: skip
    assert Job.get(job.id).status == "queued"


# --- droplets that work in a real account -----------------------------------------


@pytest.fixture
def metadata(settings_env):
    """A fake metadata service for "this" droplet; the worker's setting points at it."""
    from chalicelib.fleet import droplet_metadata
    from tests.fake_digitalocean import FakeMetadata

    fake = FakeMetadata(None)
    settings_env(OE_DROPLET_METADATA_URL=fake.start())
    droplet_metadata.forget()
    yield fake
    droplet_metadata.forget()
    fake.stop()


def booted_long_ago(fake_do) -> dict:
    droplet = fake_do.add_droplet()
    # Older than the boot timeout: without a heartbeat naming it, it would be replaced.
    droplet["created_at"] = "2020-01-01T00:00:00Z"
    return droplet


def test_a_busy_droplet_whose_worker_asked_the_metadata_service_survives(fake_do, metadata):
    from chalicelib.fleet.worker import Worker

    droplet = booted_long_ago(fake_do)
    metadata.droplet_id = droplet["id"]
    worker = Worker()  # nothing tells it its droplet id but the metadata service
    job = leased_job(time.time() + 300, worker=worker.worker_id)
    queues.send_job("long", int(job.id), 1)
    worker.beat("busy", int(job.id))
    assert WorkerState.get(worker.worker_id).droplet_id == droplet["id"]
    assert metadata.requests == ["/metadata/v1/id"]
    plan = reconcile.run()
    assert plan.remove == [] and droplet["id"] in fake_do.droplets


def test_without_the_metadata_service_the_same_droplet_is_replaced(fake_do, metadata):
    """The control for the test above: a heartbeat with no droplet id protects nothing."""
    from chalicelib.fleet.worker import Worker

    droplet = booted_long_ago(fake_do)
    worker = Worker()
    worker.beat("busy")  # metadata answers 404: no id
    assert WorkerState.get(worker.worker_id).droplet_id is None
    plan = reconcile.run()
    assert plan.remove == [droplet["id"]] and droplet["id"] not in fake_do.droplets


def test_the_reconcile_sees_only_its_own_stages_droplets(fake_do):
    other_stage = fake_do.add_droplet(
        tags=["openencoder", "openencoder-prod", "openencoder-worker"]
    )
    other_stage["created_at"] = "2020-01-01T00:00:00Z"
    untagged = fake_do.add_droplet(tags=["openencoder"])
    untagged["created_at"] = "2020-01-01T00:00:00Z"
    queues.send_job("long", 7, 1)
    plan = reconcile.run()
    # Neither counts towards this stage's pool, and neither is removed as silent.
    assert plan.create == 1 and plan.remove == []
    made = [
        d for d in fake_do.droplets.values() if d["id"] not in (other_stage["id"], untagged["id"])
    ]
    assert [d["tags"] for d in made] == [["openencoder", "openencoder-local", "openencoder-worker"]]
    assert {other_stage["id"], untagged["id"]} <= set(fake_do.droplets)


# --- one odd item never stops the tick ----------------------------------------------


def torn_job(job_id: int) -> Job:
    """A job as a half-written item reads back: leased, but with no lease expiry.

    DynamoDB keeps such an item out of the lease index, but an emulator restored from
    an older state (issue 13) served one, and the tick crashed comparing None with a number.
    """
    return Job(job_id, kind="job", status="encoding", lease_owner="worker:torn", attempt=1)


def test_a_leased_job_without_an_expiry_is_logged_and_skipped(caplog):
    good = Job(6, kind="job", status="encoding", lease_owner="w", attempt=1, lease_expires=9)
    with caplog.at_level(logging.WARNING, logger="openencoder.reconcile"):
        assert reconcile.usable_leases([torn_job(5), good]) == [good]
    skipped = [json.loads(r.message) for r in caplog.records if '"skipped"' in r.message]
    assert skipped == [{"skipped": "job", "id": 5, "missing": ["lease_expires"]}]


def test_a_heartbeat_without_a_droplet_id_is_logged_once_and_skipped(caplog, monkeypatch):
    monkeypatch.setattr(reconcile, "_SKIPPED_WORKERS", set())
    good = WorkerState("worker:good", droplet_id=1, state="idle", last_seen=NOW, idle_since=NOW)
    local = WorkerState("worker:laptop", droplet_id=None, state="busy", last_seen=NOW)
    torn = WorkerState("worker:torn", droplet_id=2, state="busy", last_seen=None)
    with caplog.at_level(logging.WARNING, logger="openencoder.reconcile"):
        beats = reconcile._beats([good, local, torn])
    assert beats == [Beat(1, "idle", NOW, NOW)]
    skipped = {json.loads(r.message)["worker"] for r in caplog.records if '"skipped"' in r.message}
    assert skipped == {"worker:laptop", "worker:torn"}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="openencoder.reconcile"):
        assert reconcile._beats([good, local, torn]) == [Beat(1, "idle", NOW, NOW)]
    assert caplog.records == []  # said once per worker, not on every tick


def test_the_tick_does_its_work_for_the_others_around_odd_items(fake_do, caplog, monkeypatch):
    monkeypatch.setattr(reconcile, "_SKIPPED_WORKERS", set())
    query = Job.by_lease.query
    # The real index, with one torn item among the real ones.
    monkeypatch.setattr(Job.by_lease, "query", lambda *a, **k: [torn_job(9002), *query(*a, **k)])
    odd_droplet = fake_do.add_droplet()
    odd_droplet["created_at"] = "yesterday"
    WorkerState("worker:torn", droplet_id=None, state="busy", last_seen=time.time()).save()
    dead = leased_job(time.time() - 10)
    queues.send_job("long", 8, 1)
    queues.send_job("long", 9, 1)
    with caplog.at_level(logging.WARNING, logger="openencoder.reconcile"):
        plan = reconcile.run()
    assert Job.get(dead.id).status == "queued"
    # The droplet of unknown age counts as booting: one more is made for the second job.
    assert plan.create == 1 and len(fake_do.droplets) == 2
    logged = " ".join(r.message for r in caplog.records)
    assert '"id": 9002' in logged and '"worker": "worker:torn"' in logged
    assert f'"id": {odd_droplet["id"]}' in logged
