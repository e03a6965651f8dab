"""Preset routes: guests read, operators write."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts.auth import Principal
from chalicelib.api import idempotency
from chalicelib.api.http import endpoint, parse_body, path_int
from chalicelib.api.schemas import PresetCreate, PresetUpdate
from chalicelib.errors import InvalidInput
from chalicelib.presets import catalog as presets


@endpoint(role="operator")
@idempotency.once("presets")
def create(request: Any, principal: Principal) -> Any:
    body = parse_body(request, PresetCreate)
    preset = presets.create_preset(presets.PresetInput(**body.model_dump()))
    return {**presets.public_view(preset), "preset": presets.public_view(preset), "status": 200}


@endpoint(role="operator")
def validate(request: Any, principal: Principal) -> Any:
    """Run create's checks and save nothing: 200 "valid" or the 400 create would give."""
    body = parse_body(request, PresetCreate)
    name, spec, output = presets.check_preset(presets.PresetInput(**body.model_dump()))
    return {
        "status": 200,
        "message": "valid",
        "preset": {"name": name, "output": output, "two_pass": spec.two_pass},
        "args": spec.args,
    }


@endpoint(role="guest")
def list_all(request: Any, principal: Principal) -> Any:
    items = [presets.public_view(p) for p in presets.list_presets()]
    return {"count": len(items), "items": items}


@endpoint(role="guest")
def get(request: Any, preset_id: str, principal: Principal) -> Any:
    preset = presets.get_preset(path_int(preset_id, "preset id"))
    return {"preset": presets.public_view(preset), "status": 200}


@endpoint(role="operator")
def update(request: Any, preset_id: str, principal: Principal) -> Any:
    number = path_int(preset_id, "preset id")
    body = parse_body(request, PresetUpdate)
    if body.id is not None and body.id != number:
        raise InvalidInput("the id in the body does not match the id in the path")
    fields = body.model_dump(exclude={"id"})
    preset = presets.update_preset(number, presets.PresetInput(**fields))
    return {**presets.public_view(preset), "preset": presets.public_view(preset), "status": 200}
