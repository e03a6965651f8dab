"""Webhook routes: operators register endpoints and read their delivery log."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts.auth import Principal
from chalicelib.api.http import endpoint, ok, parse_body
from chalicelib.api.schemas import WebhookCreate, WebhookUpdate
from chalicelib.delivery import deliveries, webhooks


@endpoint(role="operator")
def create(request: Any, principal: Principal) -> Any:
    body = parse_body(request, WebhookCreate)
    hook = webhooks.create(
        principal.username, body.url, events=body.events, active=body.active, fmt=body.format
    )
    # The only time the secret is shown.
    return ok({"webhook": webhooks.public_view(hook, with_secret=True), "status": 201}, 201)


@endpoint(role="operator")
def list_all(request: Any, principal: Principal) -> Any:
    items = [webhooks.public_view(h) for h in webhooks.list_all()]
    return {"count": len(items), "items": items}


@endpoint(role="operator")
def get(request: Any, webhook_id: str, principal: Principal) -> Any:
    return {"webhook": webhooks.public_view(webhooks.get(webhook_id)), "status": 200}


@endpoint(role="operator")
def update(request: Any, webhook_id: str, principal: Principal) -> Any:
    body = parse_body(request, WebhookUpdate)
    hook = webhooks.update(
        webhook_id, url=body.url, events=body.events, active=body.active, fmt=body.format
    )
    return {"webhook": webhooks.public_view(hook), "status": 200}


@endpoint(role="operator")
def delete(request: Any, webhook_id: str, principal: Principal) -> Any:
    hook = webhooks.delete(webhook_id)
    return {"webhook": webhooks.public_view(hook), "deleted": True, "status": 200}


@endpoint(role="operator")
def list_deliveries(request: Any, webhook_id: str, principal: Principal) -> Any:
    items = [webhooks.delivery_view(d) for d in webhooks.deliveries(webhook_id)]
    return {"count": len(items), "items": items}


@endpoint(role="operator")
def test(request: Any, webhook_id: str, principal: Principal) -> Any:
    msg_id = deliveries.queue_test(webhooks.get(webhook_id))
    return ok({"status": 202, "message": "test delivery queued", "id": msg_id}, 202)
