"""Health, queue depths, worker pools and the admin's runtime settings (chalice.test + moto)."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.fleet import heartbeats
from chalicelib.jobs import runtime_settings
from chalicelib.store import health, queues
from tests.conftest import ADMIN


@pytest.fixture(autouse=True)
def fresh_caches():
    health._cache.clear()
    runtime_settings._cache.clear()
    yield
    health._cache.clear()
    runtime_settings._cache.clear()


def test_health_reports_every_table_queue_and_bucket_without_secrets(api):
    r = api.call("GET", "/api/health")
    assert r.status_code == 200, r.data
    checks = r.data["checks"]
    assert set(checks["tables"]) >= {"users", "jobs", "uploads", "webhooks", "deliveries"}
    assert set(checks["queues"]) == {"encode", "long", "webhooks"}
    assert set(checks["buckets"]) == {"input", "output"}
    assert {state for group in checks.values() for state in group.values()} == {"ok"}
    text = json.dumps(r.data)
    assert settings().input_bucket not in text and "/openencoder/" not in text


def test_health_is_503_naming_a_missing_table(api):
    boto3.client("dynamodb").delete_table(TableName=settings().table("jobs"))
    r = api.call("GET", "/api/health")
    assert r.status_code == 503 and r.data["status"] == 503
    assert r.data["checks"]["tables"]["jobs"] == "missing"
    assert r.data["checks"]["tables"]["users"] == "ok"
    assert "tables jobs missing" in r.data["message"]


def test_health_is_503_naming_a_missing_queue_and_bucket(api):
    sqs = boto3.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=settings().long_queue)["QueueUrl"])
    queues.queue_url.cache_clear()
    s3 = boto3.client("s3")
    s3.delete_bucket_cors(Bucket=settings().output_bucket)
    s3.delete_bucket(Bucket=settings().output_bucket)
    r = api.call("GET", "/api/health")
    assert r.status_code == 503
    assert r.data["checks"]["queues"]["long"] == "missing"
    assert r.data["checks"]["buckets"]["output"] == "missing"


def test_operators_see_queue_depths_and_worker_heartbeats(api):
    guest = api.user("guest-3", "guest")
    operator = api.user("op-3", "operator")
    assert api.call("GET", "/api/worker/queue", token=guest).status_code == 403
    queues.send_job("long", 7, 1)
    queues.send_job("long", 8, 1)
    r = api.call("GET", "/api/worker/queue", token=operator)
    assert r.status_code == 200
    by_name = {q["name"]: q for q in r.data["queues"]}
    assert by_name[settings().long_queue]["depth"] == 2
    assert set(by_name) == {f"{n}{d}" for n in (settings().encode_queue, settings().long_queue,
                                                  settings().webhook_queue) for d in ("", "-dlq")}  # fmt: skip
    assert set(by_name[settings().encode_queue]) >= {"depth", "in_flight", "oldest_age_seconds"}
    assert by_name[settings().long_queue]["oldest_age_seconds"] == 0.0  # no job waits
    assert by_name[settings().webhook_queue]["oldest_age_seconds"] is None
    body = {"preset": "h264_baseline_360p_600", "source": "a.mp4", "dest": "o/"}
    job_id = api.call("POST", "/api/jobs", body, token=operator).data["job"]["id"]
    from chalicelib.store.models import Job

    Job(job_id).update(actions=[Job.queued_due.set(int(time.time()) - 120)])
    by_name = {
        q["name"]: q for q in api.call("GET", "/api/worker/queue", token=operator).data["queues"]
    }
    assert 119 <= by_name[settings().encode_queue]["oldest_age_seconds"] < 200
    heartbeats.beat("worker:a", "busy", job_id=7)
    pools = api.call("GET", "/api/worker/pools", token=operator).data
    assert pools["count"] == 1
    (worker,) = pools["items"]
    assert (worker["worker_id"], worker["state"], worker["job_id"]) == ("worker:a", "busy", 7)
    assert worker["last_seen"].endswith("Z")


def test_settings_round_trip_with_a_write_only_secret(api):
    admin = api.login(*ADMIN)
    before = api.call("GET", "/api/settings", token=admin).data["settings"]
    assert before["digitalocean_token"] == "not set" and before["droplets_max"] == 3
    body = {"droplets_max": 5, "droplet_region": "ams3", "digitalocean_token": "dop_v1_very_secret",
            "default_presets": ["h264_main_480p_1000"]}  # fmt: skip
    r = api.call("PUT", "/api/settings", body, token=admin)
    assert r.status_code == 200, r.data
    assert "dop_v1_very_secret" not in json.dumps(r.data)
    got = api.call("GET", "/api/settings", token=admin).data["settings"]
    assert "dop_v1_very_secret" not in json.dumps(got)
    assert got["digitalocean_token"] == "set" and got["slack_webhook_url"] == "not set"
    assert (got["droplets_max"], got["droplet_region"], got["default_presets"]) == (
        5,
        "ams3",
        ["h264_main_480p_1000"],
    )
    stored = boto3.client("ssm").get_parameter(
        Name=settings().do_token_parameter, WithDecryption=True
    )
    assert stored["Parameter"]["Type"] == "SecureString"
    assert stored["Parameter"]["Value"] == "dop_v1_very_secret"
    # Omitted fields stay; null returns a knob to the default and removes a secret.
    r = api.call(
        "PUT", "/api/settings", {"droplets_max": None, "digitalocean_token": None}, token=admin
    )
    after = r.data["settings"]
    assert (after["droplets_max"], after["droplet_region"], after["digitalocean_token"]) == (
        3,
        "ams3",
        "not set",
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"droplets_min": 4, "droplets_max": 2}, "droplets_min must not be more"),
        ({"droplet_region": "NYC 3"}, "slug"),
        ({"default_presets": ["no_such_preset"]}, "no preset named"),
        ({"webhook_default_events": ["job.exploded"]}, "webhook_default_events"),
        ({"droplets_max": -1}, "'droplets_max'"),
        ({"slack_webhook_url": "http://hooks.example.com/x"}, "'slack_webhook_url'"),
        ({"jwt_key": "mine"}, "unknown field"),
    ],
)
def test_bad_settings_are_clear_400s_and_change_nothing(api, body, words):
    admin = api.login(*ADMIN)
    r = api.call("PUT", "/api/settings", body, token=admin)
    assert r.status_code == 400 and words in r.data["message"], r.data
    assert api.call("GET", "/api/settings", token=admin).data["settings"]["overridden"] == []


def test_only_admins_read_or_change_settings(api):
    operator = api.user("op-4", "operator")
    assert api.call("GET", "/api/settings", token=operator).status_code == 403
    assert api.call("PUT", "/api/settings", {"droplets_max": 9}, token=operator).status_code == 403


def test_the_reconcile_uses_the_settings_and_the_token_set_through_them(api, monkeypatch):
    from chalicelib.fleet import reconcile
    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean("token-from-settings")
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake.start())
    try:
        boto3.client("ssm").put_parameter(
            Name=settings().api_url_parameter, Type="String", Value="https://api.test/api"
        )
        admin = api.login(*ADMIN)
        body = {"droplets_max": 1, "digitalocean_token": "token-from-settings"}
        assert api.call("PUT", "/api/settings", body, token=admin).status_code == 200
        for job_id in (201, 202, 203):
            queues.send_job("long", job_id, 1)
        plan = reconcile.run()
        assert plan.desired == 1 and len(fake.droplets) == 1  # the environment says 3
    finally:
        fake.stop()
