"""JSON nested past Python's recursion limit is a 400 wherever a client can send it, never a 500."""

from __future__ import annotations

import base64

DEEP = "[" * 5000


def test_deeply_nested_bodies_presets_and_cursors_are_400s(api):
    token = api.user("nester", "operator")
    for path in ("/api/login", "/api/update-password", "/api/jobs", "/api/presets"):
        r = api.call("POST", path, DEEP, token=token)
        assert r.status_code == 400, (path, r.data)
    keyed = api.call("POST", "/api/jobs", DEEP, token=token, headers={"Idempotency-Key": "deep"})
    assert keyed.status_code == 400, keyed.data
    preset = {"name": "deep_one", "data": DEEP[:30000], "output": "o.mp4"}
    r = api.call("POST", "/api/presets", preset, token=token)
    assert r.status_code == 400 and "nests too deeply" in r.data["message"], r.data
    job = {"preset": "h264_baseline_360p_600", "source": "src/a.mp4", "dest": "out/a/"}
    job_id = api.call("POST", "/api/jobs", job, token=token).data["job"]["id"]
    cursor = base64.urlsafe_b64encode(DEEP[:3000].encode()).decode()
    for path in ("/api/jobs", f"/api/jobs/{job_id}/files"):
        r = api.call("GET", f"{path}?cursor={cursor}", token=token)
        assert r.status_code == 400 and "cursor" in r.data["message"], (path, r.data)
