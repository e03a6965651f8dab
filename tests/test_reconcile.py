"""The reconcile: its decision as a table, the lock, lease recovery, and a run against
the fake DigitalOcean and moto."""

from __future__ import annotations

import json
import logging
import time

import boto3
import pytest

from chalicelib import jobs, queues, reconcile
from chalicelib.config import settings
from chalicelib.models import Job, WorkerState
from chalicelib.reconcile import Beat, Droplet, Limits, decide
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
    first = reconcile.acquire_lock(NOW)
    assert first is not None
    assert reconcile.acquire_lock(NOW + 1) is None
    assert (
        reconcile.acquire_lock(NOW + reconcile.LOCK_SECONDS + 1) is not None
    )  # expired locks are taken
    reconcile.release_lock(first)  # the old holder cannot release the new holder's lock
    assert reconcile.acquire_lock(NOW + reconcile.LOCK_SECONDS + 2) is None


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
    ssm.put_parameter(Name=settings().worker_credentials_parameter, Type="SecureString",
                      Value=json.dumps({"access_key_id": "AKIA", "secret_access_key": "scoped"}))  # fmt: skip
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
