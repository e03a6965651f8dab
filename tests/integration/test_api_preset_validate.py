"""POST /api/presets/validate: create's checks, nothing saved (the CLI's `presets validate`)."""

from __future__ import annotations

from tests.conftest import ADMIN

RAW = '{"raw":["-c:v libx264","-b:v 500k","-y"]}'


def test_a_valid_preset_is_answered_valid_and_not_saved(api):
    admin = api.login(*ADMIN)
    body = {"name": "checked", "data": RAW, "output": "checked.mp4"}
    r = api.call("POST", "/api/presets/validate", body, token=admin)
    assert r.status_code == 200, r.data
    assert r.data["status"] == 200 and r.data["message"] == "valid"
    assert r.data["preset"]["output"] == "checked.mp4" and "libx264" in r.data["args"]
    names = {p["name"] for p in api.call("GET", "/api/presets", token=admin).data["items"]}
    assert "checked" not in names


def test_an_unsafe_preset_gets_the_same_400_as_create(api):
    admin = api.login(*ADMIN)
    body = {"name": "sneaky", "data": '{"raw":["-i /etc/passwd","-c:v libx264"]}'}
    checked = api.call("POST", "/api/presets/validate", body, token=admin)
    created = api.call("POST", "/api/presets", body, token=admin)
    assert checked.status_code == created.status_code == 400
    assert checked.data == created.data


def test_validating_needs_the_operator_role(api):
    guest = api.user("viewer", "guest")
    r = api.call("POST", "/api/presets/validate", {"name": "x", "data": RAW}, token=guest)
    assert r.status_code == 403
