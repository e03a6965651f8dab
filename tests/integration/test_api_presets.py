"""Preset routes: seeded presets, create, update (both spellings), validation."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ADMIN

RAW = '{"raw":["-c:v libx264","-b:v 500k","-y"]}'


@pytest.fixture
def admin(api):
    return api.login(*ADMIN)


def test_five_original_presets_and_two_ladders_are_seeded(api, admin):
    r = api.call("GET", "/api/presets", token=admin)
    assert r.status_code == 200
    assert r.data["count"] == 7
    names = {p["name"] for p in r.data["items"]}
    assert names == {
        "h264_baseline_360p_600", "h264_main_480p_1000", "h264_main_720p_3000",
        "h264_main_1080p_6000", "webm_vp9_720p_3000", "h264_ladder_hls_dash",
        "av1_ladder_hls_dash",
    }  # fmt: skip


def test_get_preset_has_preset_and_status(api, admin):
    r = api.call("GET", "/api/presets/1", token=admin)
    assert r.status_code == 200
    assert r.data["status"] == 200
    assert r.data["preset"]["name"] == "h264_baseline_360p_600"
    assert r.data["preset"]["output"] == "h264_baseline_360p_600.mp4"


def test_create_then_read_back(api, admin):
    body = {"name": "mine", "description": "d", "data": RAW, "output": "mine.mp4", "active": True}
    r = api.call("POST", "/api/presets", body, token=admin)
    assert r.status_code == 200
    assert r.data["id"] == 8 and r.data["name"] == "mine"
    got = api.call("GET", f"/api/presets/{r.data['id']}", token=admin).data["preset"]
    assert got == {**body, "id": 8}


def test_name_clash_is_409(api, admin):
    r = api.call("POST", "/api/presets", {"name": "h264_main_480p_1000", "data": RAW}, token=admin)
    assert r.status_code == 409
    assert "already exists" in r.data["message"]


def test_unsafe_option_is_400_naming_it(api, admin):
    data = '{"raw":["-c:v libx264","-vf movie=/etc/passwd"]}'
    r = api.call("POST", "/api/presets", {"name": "evil", "data": data}, token=admin)
    assert r.status_code == 400
    assert "movie" in r.data["message"]
    assert api.call("GET", "/api/presets", token=admin).data["count"] == 7


@pytest.mark.parametrize(
    "path, method", [("/api/presets/{id}", "PUT"), ("/api/preset/{id}", "POST")]
)
def test_update_under_both_spellings_persists_every_field(api, admin, path, method):
    created = api.call("POST", "/api/presets", {"name": "upd", "data": RAW}, token=admin).data
    change = {"name": "upd2", "description": "new", "output": "x.mkv", "active": False,
              "data": '{"raw":["-c:v libx264","-crf 20"]}'}  # fmt: skip
    r = api.call(method, path.format(id=created["id"]), change, token=admin)
    assert r.status_code == 200, r.data
    got = api.call("GET", f"/api/presets/{created['id']}", token=admin).data["preset"]
    assert got == {**change, "id": created["id"]}
    # The old name is free again, the new one is taken.
    assert (
        api.call("POST", "/api/presets", {"name": "upd", "data": RAW}, token=admin).status_code
        == 200
    )
    assert (
        api.call("POST", "/api/presets", {"name": "upd2", "data": RAW}, token=admin).status_code
        == 409
    )


def test_rename_onto_existing_name_is_409_and_changes_nothing(api, admin):
    r = api.call("PUT", "/api/presets/1", {"name": "h264_main_480p_1000"}, token=admin)
    assert r.status_code == 409
    assert (
        api.call("GET", "/api/presets/1", token=admin).data["preset"]["name"]
        == "h264_baseline_360p_600"
    )


def test_update_with_bad_data_is_400(api, admin):
    r = api.call("PUT", "/api/presets/1", {"data": "{oops"}, token=admin)
    assert r.status_code == 400 and "JSON" in r.data["message"]


@pytest.mark.parametrize("preset_id", ["999", "abc", "-1"])
def test_unknown_or_malformed_ids(api, admin, preset_id):
    r = api.call("GET", f"/api/presets/{preset_id}", token=admin)
    assert r.status_code in (400, 404)
    assert r.data["status"] == r.status_code


def test_bad_output_name_is_400(api, admin):
    r = api.call(
        "POST", "/api/presets", {"name": "o", "data": RAW, "output": "../x.mp4"}, token=admin
    )
    assert r.status_code == 400 and "output" in r.data["message"]


def test_ladder_presets_are_validated_field_by_field(api, admin):
    ladder = {"renditions": [{"height": 720, "bitrate": "3000k"}], "packaging": ["hls"]}
    good = {"name": "my-ladder", "data": json.dumps({"ladder": ladder})}
    r = api.call("POST", "/api/presets", good, token=admin)
    assert r.status_code == 200, r.data
    assert r.data["output"] == "master.m3u8"
    hostile = {**ladder, "renditions": [{"height": 720, "bitrate": "3000k -i /etc/passwd"}]}
    r = api.call("POST", "/api/presets", {"name": "bad", "data": json.dumps({"ladder": hostile})},
                 token=admin)  # fmt: skip
    assert r.status_code == 400 and "bitrate" in r.data["message"]
    unknown = {**ladder, "x264opts": "keyint=1"}
    r = api.call("POST", "/api/presets", {"name": "bad", "data": json.dumps({"ladder": unknown})},
                 token=admin)  # fmt: skip
    assert r.status_code == 400 and "x264opts" in r.data["message"]
