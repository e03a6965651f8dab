"""Webhooks: registration, the SSRF guard, Standard Webhooks signatures, fan-out and attempts.

Routes run through chalice.test with moto in process; deliveries go over real HTTP
to a loopback receiver. The whole flow through the queue and the pump, with jobs
that really end, is in tests/e2e/test_media_io.py.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from standardwebhooks import Webhook as Verifier

from chalicelib.config import settings
from chalicelib.delivery import deliveries, outbound, webhooks
from chalicelib.errors import InvalidInput
from chalicelib.jobs import events
from chalicelib.store.models import Job
from tests.polling import wait_until
from tests.receiver import Receiver


@pytest.fixture
def loopback(monkeypatch):
    """The local stack's allowance: http to 127.0.0.1 (never private or link-local)."""
    monkeypatch.setitem(settings().__dict__, "webhook_allow_loopback", True)


def queued(queue: str | None = None) -> list[dict]:
    from chalicelib.store.queues import sqs

    url = sqs().get_queue_url(QueueName=queue or settings().webhook_queue)["QueueUrl"]
    bodies = []
    while True:
        got = sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs().delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_the_secret_is_shown_once_and_the_endpoint_can_be_changed_and_removed(api, loopback):
    token = api.user("hooker", "operator")
    r = api.call("POST", "/api/webhooks", {"url": "http://127.0.0.1:9/h"}, token=token)
    assert r.status_code == 201, r.data
    hook = r.data["webhook"]
    assert hook["secret"].startswith("whsec_") and hook["format"] == "standard"
    assert hook["events"] == ["job.completed", "job.failed", "job.cancelled"]
    got = api.call("GET", f"/api/webhooks/{hook['id']}", token=token).data["webhook"]
    assert "secret" not in got and got["url"] == "http://127.0.0.1:9/h"
    listed = api.call("GET", "/api/webhooks", token=token).data
    assert listed["count"] == 1 and "secret" not in listed["items"][0]
    body = {"events": ["job.progress"], "active": False, "format": "slack"}
    changed = api.call("PUT", f"/api/webhooks/{hook['id']}", body, token=token).data["webhook"]
    assert (changed["events"], changed["active"], changed["format"]) == (
        ["job.progress"],
        False,
        "slack",
    )
    assert api.call("DELETE", f"/api/webhooks/{hook['id']}", token=token).status_code == 200
    assert api.call("GET", f"/api/webhooks/{hook['id']}", token=token).status_code == 404
    guest = api.user("guest-2", "guest")
    assert api.call("GET", "/api/webhooks", token=guest).status_code == 403


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "https://127.0.0.1:9/h", "events": ["job.exploded"]}, "events must be"),
        ({"url": "https://127.0.0.1:9/h", "events": []}, "events must be"),
        ({"url": "https://127.0.0.1:9/h", "format": "teams"}, "'format'"),
        ({"url": "ftp://example.com/x"}, "url must be https"),
        ({"url": "https://user:pw@example.com/x"}, "without user or password"),
    ],
)
def test_bad_webhooks_are_clear_400s(api, body, words):
    token = api.user("hooker", "operator")
    r = api.call("POST", "/api/webhooks", body, token=token)
    assert r.status_code == 400 and words in r.data["message"], r.data


# --- SSRF guard, as a deployed stage is configured (OE_WEBHOOK_ALLOW_LOOPBACK unset) ---


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://172.16.5.4:8443/hook", "private"),
        ("https://100.64.0.1/hook", "private"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost:8443/hook", "loopback"),  # a name that resolves to loopback
        ("https://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://0.0.0.0/hook", "reserved"),
        ("http://93.184.215.14/hook", "must be https"),
    ],
)
def test_a_deployed_stage_refuses_urls_that_are_not_public_https(api, url, kind):
    assert settings().webhook_allow_loopback is False
    token = api.user("hooker", "operator")
    r = api.call("POST", "/api/webhooks", {"url": url}, token=token)
    assert r.status_code == 400 and kind in r.data["message"], r.data
    job = {"preset": "h264_baseline_360p_600", "source": "a.mp4", "dest": "o/", "notify_url": url}
    r = api.call("POST", "/api/jobs", job, token=token)
    assert r.status_code == 400 and kind in r.data["message"], r.data


def test_the_guard_is_applied_again_when_calling_not_only_when_registering(aws):
    with pytest.raises(InvalidInput, match="loopback"):
        outbound.post("https://localhost:9/x", b"{}", {}, timeout=1)


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(aws, loopback):
    with Receiver() as first, Receiver() as elsewhere:
        first.answers["/hook"] = [302]
        first.redirect_to = elsewhere.url + "/stolen"
        hook = webhooks.create("op", first.url + "/hook")
        deliveries.queue_test(hook)
        (message,) = queued()
        assert deliveries.deliver(message) == "retrying"
        assert len(first.at("/hook")) == 1 and elsewhere.requests == []
    (attempt,) = webhooks.deliveries(hook.id)
    assert attempt.status_code == 302 and "redirect not followed" in attempt.error


# --- signatures, fan-out, attempts --------------------------------------------------


def test_deliveries_are_signed_so_a_standard_webhooks_library_verifies_them(aws, loopback):
    with Receiver() as receiver:
        hook = webhooks.create("op", receiver.url + "/signed")
        deliveries.queue_test(hook)
        (message,) = queued()
        assert deliveries.deliver(message) == "delivered"
        (got,) = receiver.at("/signed")
    payload = Verifier(hook.secret).verify(got.body, got.headers)
    assert payload["type"] == "webhook.test" and payload["data"]["webhook_id"] == hook.id
    assert got.headers["webhook-id"] == message["msg_id"]
    with pytest.raises(Exception, match="signature"):
        Verifier(webhooks.new_secret()).verify(got.body, got.headers)
    (attempt,) = webhooks.deliveries(hook.id)
    assert (attempt.status_code, attempt.attempt, attempt.next_try) == (200, 1, None)


def test_a_job_event_fans_out_to_subscribed_endpoints_and_the_jobs_notify_url(api, loopback):
    token = api.user("maker", "operator")
    wants = webhooks.create("op", "http://127.0.0.1:9/completed", events=["job.completed"])
    webhooks.create("op", "http://127.0.0.1:9/progress", events=["job.progress"])
    webhooks.create("op", "http://127.0.0.1:9/off", events=["job.completed"], active=False)
    body = {"preset": "h264_baseline_360p_600", "source": "a.mp4", "dest": "o/",
            "notify_url": "http://127.0.0.1:9/mine"}  # fmt: skip
    created = api.call("POST", "/api/jobs", body, token=token).data
    notify = created["notify"]
    assert notify["secret"].startswith("whsec_") and created["job"]["notify_webhook"]
    assert "secret" not in json.dumps(api.call("GET", f"/api/jobs/{created['job']['id']}",
                                               token=token).data)  # fmt: skip
    queued()  # the job's own queue messages are elsewhere; start from an empty webhook queue
    events.job_finished(created["job"]["id"], "completed")
    (event,) = queued()
    assert event["event"] == "job.completed" and deliveries.process(json.dumps(event)) == (
        "fanned out to 2"
    )
    fanned = queued()
    assert {m["webhook_id"] for m in fanned} == {wants.id, notify["webhook_id"]}
    assert len({m["msg_id"] for m in fanned}) == 1  # one event, one id for receivers to dedupe
    assert fanned[0]["data"]["id"] == created["job"]["id"]


def test_a_cancelled_job_queues_its_event_from_the_cancel(api):
    token = api.user("maker", "operator")
    body = {"preset": "h264_baseline_360p_600", "source": "a.mp4", "dest": "o/"}
    job_id = api.call("POST", "/api/jobs", body, token=token).data["job"]["id"]
    queued()
    assert api.call("POST", f"/api/jobs/{job_id}/cancel", token=token).status_code == 200
    assert [(m["event"], m["job_id"]) for m in queued()] == [("job.cancelled", job_id)]


def test_progress_events_are_at_most_one_per_ten_seconds_per_job(aws):
    for _ in range(5):
        events.job_progress(41, 10.0)
    events.job_progress(42, 10.0)
    assert sorted(m["job_id"] for m in queued()) == [41, 42]
    events.job_finished(41, "completed")
    events.job_progress(41, 99.0)  # a new attempt starts its own window
    assert [m["event"] for m in queued()] == ["job.completed", "job.progress"]


def test_failed_attempts_back_off_exponentially_then_go_to_the_dead_letter_queue(
    aws, loopback, monkeypatch
):
    monkeypatch.setitem(settings().__dict__, "webhook_max_attempts", 3)
    monkeypatch.setitem(settings().__dict__, "webhook_backoff_seconds", 0.2)
    with Receiver() as receiver:
        receiver.answers["/down"] = [503]
        hook = webhooks.create("op", receiver.url + "/down")
        deliveries.queue_test(hook)
        (message,) = queued()
        results = [deliveries.deliver(message)]
        for _ in range(2):
            # SQS holds each retry for its delay (rounded up to whole seconds).
            (message,) = wait_until(queued, 10, "the retry to become visible")
            results.append(deliveries.deliver({**message, "due": 0}))
        assert results == ["retrying", "retrying", "dead-lettered"]
        assert len(receiver.at("/down")) == 3
    (dead,) = queued(settings().webhook_queue + "-dlq")
    assert dead["attempt"] == 3 and dead["error"] == "answered 503"
    log = list(reversed(webhooks.deliveries(hook.id)))
    assert [d.attempt for d in log] == [1, 2, 3] and log[-1].next_try is None
    waits = [(d.next_try - d.created).total_seconds() for d in log[:2]]
    assert waits == pytest.approx([0.2, 0.8], abs=0.01)


def test_a_message_that_is_not_due_yet_waits_on_the_queue_without_an_attempt(aws, loopback):
    with Receiver() as receiver:
        hook = webhooks.create("op", receiver.url + "/later")
        deliveries.queue_test(hook)
        (message,) = queued()
        assert deliveries.deliver({**message, "due": time.time() + 3600}) == "waiting"
        assert receiver.requests == [] and webhooks.deliveries(hook.id) == []
    from chalicelib.store.queues import sqs

    url = sqs().get_queue_url(QueueName=settings().webhook_queue)["QueueUrl"]
    names = ["ApproximateNumberOfMessagesDelayed"]
    attributes = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_a_slack_endpoint_gets_a_slack_message(aws, loopback):
    with Receiver() as receiver:
        hook = webhooks.create("op", receiver.url + "/slack", fmt="slack")
        job = Job(7, guid="g", owner="op", preset="p", preset_snapshot={}, source="s", dest="d",
                  error={"message": "ffmpeg failed: no video", "log": ""}, status="error")  # fmt: skip
        job.save()
        data = deliveries.job_payload(job, "job.failed", {})
        message = deliveries._delivery(hook.id, "msg_1", "job.failed", data, 0.0)
        assert deliveries.deliver(message) == "delivered"
        (got,) = receiver.at("/slack")
    assert json.loads(got.body) == {
        "text": ":x: Open Encoder job 7 (p) failed: ffmpeg failed: no video"
    }
    assert "webhook-signature" not in got.headers


def test_the_slack_url_set_in_settings_is_told_of_completed_jobs_and_never_shown(api, loopback):
    from aws_lambda_powertools.utilities import parameters

    from tests.conftest import ADMIN

    admin = api.login(*ADMIN)
    secret_url = "https://hooks.slack.com/services/T000/B000/very-secret"
    r = api.call("PUT", "/api/settings", {"slack_webhook_url": secret_url}, token=admin)
    assert r.status_code == 200 and r.data["settings"]["slack_webhook_url"] == "set"
    shown = api.call("GET", f"/api/webhooks/{webhooks.SETTINGS_SLACK}", token=admin).data
    assert secret_url not in json.dumps(shown) and shown["webhook"]["format"] == "slack"
    body = {"preset": "h264_baseline_360p_600", "source": "a.mp4", "dest": "o/"}
    job_id = api.call("POST", "/api/jobs", body, token=admin).data["job"]["id"]
    with Receiver() as receiver:
        # Locally the "Slack" endpoint is the loopback receiver (the settings route wants https).
        boto3.client("ssm").put_parameter(Name=settings().slack_url_parameter, Type="SecureString",
                                          Value=receiver.url + "/slack", Overwrite=True)  # fmt: skip
        parameters.clear_caches()
        queued()
        events.job_finished(job_id, "completed")
        (event,) = queued()
        assert deliveries.process(json.dumps(event)) == "fanned out to 1"
        (message,) = queued()
        assert message["webhook_id"] == webhooks.SETTINGS_SLACK
        assert deliveries.deliver(message) == "delivered"
        (got,) = receiver.at("/slack")
    assert json.loads(got.body)["text"].startswith(f":white_check_mark: Open Encoder job {job_id}")
    log = api.call("GET", f"/api/webhooks/{webhooks.SETTINGS_SLACK}/deliveries", token=admin).data
    assert log["count"] == 1 and log["items"][0]["status_code"] == 200
