"""Webhook endpoints: registration, signing (Standard Webhooks) and the messages they get.

Endpoints are stage-wide (every job's events; guests may read every job too) or
made for one job by its `notify_url`. The signing secret is generated here and
shown once, when the endpoint is made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from pynamodb.exceptions import DeleteError, UpdateError

from chalicelib.delivery import outbound
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.jobs.events import DEFAULT_EVENTS, EVENTS
from chalicelib.store.models import Delivery, Webhook, rfc3339, utcnow

FORMATS = ("standard", "slack")
TEST_EVENT = "webhook.test"
STAGE_WIDE, FOR_JOB = "webhook", "job-webhook"
# The Slack URL an admin sets in PUT /api/settings (kept in SSM, never in the table)
# behaves as one more endpoint, told when jobs complete or fail.
SETTINGS_SLACK = "wh_settings_slack"
MAX_LISTED = 200


def new_secret() -> str:
    """`whsec_` + base64 of 24 random bytes, the Standard Webhooks secret format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _check_events(events: list[str] | None) -> list[str]:
    if events is None:
        from chalicelib.jobs import runtime_settings

        events = runtime_settings.webhook_default_events() or list(DEFAULT_EVENTS)
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise InvalidInput(f"events must be some of {', '.join(EVENTS)}")
    return chosen


def _check_format(value: str | None) -> str:
    value = value or "standard"
    if value not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}")
    return value


def create(
    owner: str,
    url: str,
    *,
    events: list[str] | None = None,
    active: bool = True,
    fmt: str | None = None,
    kind: str = STAGE_WIDE,
) -> Webhook:
    from chalicelib.store.ids import new_guid

    chosen, fmt = _check_events(events), _check_format(fmt)
    outbound.check_url(url)
    hook = Webhook(
        "wh_" + new_guid(),
        kind=kind,
        owner=owner,
        url=url.strip(),
        events=chosen,
        active=active,
        format=fmt,
        secret=new_secret(),
    )
    hook.save(condition=Webhook.id.does_not_exist())
    return hook


def create_for_job(owner: str, url: str) -> Webhook:
    """The endpoint of one job's notify_url: told of that job's end (job id set once known)."""
    return create(owner, url, events=list(DEFAULT_EVENTS), kind=FOR_JOB)


def attach_to_job(hook: Webhook, job_id: int) -> None:
    hook.update(actions=[Webhook.job_id.set(job_id)])


def settings_slack() -> Webhook | None:
    from chalicelib.store.secret_params import slack_webhook_url

    url = slack_webhook_url()
    if not url:
        return None
    return Webhook(SETTINGS_SLACK, kind="settings", owner="admin", url=url, format="slack",
                   events=["job.completed", "job.failed"], active=True, secret="")  # fmt: skip


def lookup(webhook_id: str) -> Webhook | None:
    """The endpoint a delivery goes to, or None if it is gone."""
    if webhook_id == SETTINGS_SLACK:
        return settings_slack()
    try:
        return Webhook.get(webhook_id, consistent_read=True)
    except Webhook.DoesNotExist:
        return None


def get(webhook_id: str) -> Webhook:
    if webhook_id == SETTINGS_SLACK:
        hook = settings_slack()
        if hook is None:
            raise NotFound("no Slack URL is set in the settings")
        return hook
    try:
        return Webhook.get(webhook_id, consistent_read=True)
    except Webhook.DoesNotExist:
        raise NotFound(f"no webhook {webhook_id!r}") from None


def list_all() -> list[Webhook]:
    return list(Webhook.by_kind.query(STAGE_WIDE, limit=MAX_LISTED))


def subscribed(event: str) -> list[Webhook]:
    """Active stage-wide endpoints that want `event` (one Query on the kind index)."""
    return [h for h in Webhook.by_kind.query(STAGE_WIDE) if h.active and event in h.events]


def update(
    webhook_id: str,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    active: bool | None = None,
    fmt: str | None = None,
) -> Webhook:
    hook = get(webhook_id)
    actions: list[Any] = [Webhook.updated.set(utcnow())]
    if url is not None:
        outbound.check_url(url)
        actions.append(Webhook.url.set(url.strip()))
    if events is not None:
        actions.append(Webhook.events.set(_check_events(events)))
    if active is not None:
        actions.append(Webhook.active.set(active))
    if fmt is not None:
        actions.append(Webhook.format.set(_check_format(fmt)))
    try:
        hook.update(actions=actions, condition=Webhook.id.exists())
    except UpdateError:
        raise NotFound(f"no webhook {webhook_id!r}") from None
    return get(webhook_id)


def delete(webhook_id: str) -> Webhook:
    hook = get(webhook_id)
    try:
        hook.delete(condition=Webhook.id.exists())
    except DeleteError:
        raise NotFound(f"no webhook {webhook_id!r}") from None
    return hook


def deliveries(webhook_id: str, limit: int = 100) -> list[Delivery]:
    """Newest attempt first."""
    get(webhook_id)
    return list(Delivery.query(webhook_id, scan_index_forward=False, limit=limit))


def public_view(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": hook.id,
        # The settings' Slack URL is a secret (it alone lets anyone post): never shown.
        "url": "(set in settings)" if hook.id == SETTINGS_SLACK else hook.url,
        "events": list(hook.events),
        "active": hook.active,
        "format": hook.format,
        "owner": hook.owner,
        "created": rfc3339(hook.created),
    }
    if hook.job_id is not None:
        view["job_id"] = int(hook.job_id)
    if with_secret:
        view["secret"] = hook.secret
    return view


def delivery_view(item: Delivery) -> dict[str, Any]:
    return {
        "id": item.id,
        "event": item.event,
        "attempt": int(item.attempt),
        "status_code": int(item.status_code) if item.status_code is not None else None,
        "error": item.error,
        "latency_ms": int(item.latency_ms) if item.latency_ms is not None else None,
        "next_try": rfc3339(item.next_try) if item.next_try else None,
        "created": rfc3339(item.created),
    }
