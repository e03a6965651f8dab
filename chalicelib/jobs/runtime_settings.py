"""Runtime settings: the knobs an admin changes without a redeploy, and write-only secrets.

Knobs (autoscale bounds and budget, droplet region and size, default presets,
webhook defaults) are one JSON document in the system table, overlaid on the
stage's environment defaults; the reconcile reads them on every tick, so a change
takes effect within a minute. Secrets (the DigitalOcean token, a Slack URL) go to
SSM as SecureStrings and are never returned, only "set" or "not set".
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.config import Settings, settings
from chalicelib.errors import Conflict, InvalidInput
from chalicelib.store.models import SystemItem

ITEM = "settings"
CACHE_SECONDS = 30.0
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# knob -> the Settings field it overrides
KNOBS = {
    "droplets_min": "droplet_min",
    "droplets_max": "droplet_max",
    "droplets_hourly_budget": "hourly_budget",
    "droplet_region": "droplet_region",
    "droplet_size": "droplet_size",
    "default_presets": "default_presets",
}
EXTRA_KNOBS = ("webhook_default_events",)
SECRETS = {"digitalocean_token": "do_token_parameter", "slack_webhook_url": "slack_url_parameter"}
_cache: dict[str, Any] = {}
_lock = threading.Lock()


def stored(max_age: float = CACHE_SECONDS) -> dict[str, Any]:
    """The saved knobs (only those an admin set), at most `max_age` seconds old."""
    with _lock:
        hit = _cache.get(ITEM)
        if hit and time.monotonic() - hit[0] < max_age:
            return dict(hit[1])
    try:
        item = SystemItem.get(ITEM, consistent_read=True)
        document = json.loads(item.document or "{}")
    except SystemItem.DoesNotExist:
        document = {}
    with _lock:
        _cache[ITEM] = (time.monotonic(), document)
    return dict(document)


def effective(base: Settings | None = None, max_age: float = CACHE_SECONDS) -> Settings:
    """The stage's settings with the admin's knobs applied."""
    base = base or settings()
    changes = {field: stored(max_age)[knob] for knob, field in KNOBS.items()
               if knob in stored(max_age)}  # fmt: skip
    if "default_presets" in changes:
        changes["default_presets"] = tuple(changes["default_presets"])
    return dataclasses.replace(base, **changes)


def webhook_default_events() -> list[str] | None:
    return stored().get("webhook_default_events")


def _validate(merged: dict[str, Any]) -> None:
    if merged.get("droplets_min", 0) > merged.get("droplets_max", settings().droplet_max):
        raise InvalidInput("droplets_min must not be more than droplets_max")
    for key in ("droplet_region", "droplet_size"):
        if key in merged and not _SLUG.match(merged[key]):
            raise InvalidInput(f"{key} must be a DigitalOcean slug such as nyc3 or c-4")
    if "default_presets" in merged:
        from chalicelib.errors import NotFound
        from chalicelib.presets.catalog import get_preset_by_name

        for name in merged["default_presets"]:
            try:
                get_preset_by_name(name)
            except NotFound:
                raise InvalidInput(f"default_presets: no preset named {name!r}") from None
    if "webhook_default_events" in merged:
        from chalicelib.jobs.events import EVENTS

        unknown = [e for e in merged["webhook_default_events"] if e not in EVENTS]
        if unknown or not merged["webhook_default_events"]:
            raise InvalidInput(f"webhook_default_events must be some of {', '.join(EVENTS)}")


def _ssm() -> Any:
    import boto3

    return boto3.client("ssm", region_name=settings().region)


def secret_states() -> dict[str, str]:
    """ "set" or "not set" for each secret; the values are never read."""
    from botocore.exceptions import ClientError

    states = {}
    for name, field in SECRETS.items():
        try:
            _ssm().get_parameter(Name=getattr(settings(), field), WithDecryption=False)
            states[name] = "set"
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterNotFound":
                raise
            states[name] = "not set"
    return states


def _write_secret(name: str, value: str | None) -> None:
    from botocore.exceptions import ClientError

    parameter = getattr(settings(), SECRETS[name])
    if value is None or value == "":
        try:
            _ssm().delete_parameter(Name=parameter)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterNotFound":
                raise
        return
    _ssm().put_parameter(Name=parameter, Value=value, Type="SecureString", Overwrite=True)


def update(knobs: dict[str, Any], secrets: dict[str, str | None]) -> dict[str, Any]:
    """Merge `knobs` into the saved ones (omitted ones stay), write `secrets`, return the view.

    A knob set to null goes back to the stage's default; a secret set to null or "" is removed.
    """
    try:
        item = SystemItem.get(ITEM, consistent_read=True)
        before = item.document
    except SystemItem.DoesNotExist:
        before = None
    merged = json.loads(before or "{}")
    for key, value in knobs.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    _validate(merged)
    condition = SystemItem.document == before if before else SystemItem.name.does_not_exist()
    try:
        SystemItem(ITEM, document=json.dumps(merged, sort_keys=True)).save(condition=condition)
    except PutError:
        raise Conflict("settings changed meanwhile: read them again and retry") from None
    for name, value in secrets.items():
        _write_secret(name, value)
    with _lock:
        _cache.pop(ITEM, None)
    if "digitalocean_token" in secrets:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # this container uses the new token at once
    return view()


def view() -> dict[str, Any]:
    s = effective(max_age=0)
    saved = stored(0)
    from chalicelib.jobs.events import DEFAULT_EVENTS

    knobs: dict[str, Any] = {knob: getattr(s, field) for knob, field in KNOBS.items()}
    knobs["default_presets"] = list(knobs["default_presets"])
    knobs["webhook_default_events"] = saved.get("webhook_default_events", list(DEFAULT_EVENTS))
    return {**knobs, **secret_states(), "overridden": sorted(saved)}
