"""Numbers in paths and query strings: ASCII digits within bounds, anything else a 400."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN

HOSTILE = [
    "²",  # str.isdigit() says yes, int() says no: this was a 500
    "١٢",  # Arabic-Indic digits: int() reads them as 12
    "\uff11\uff12",  # fullwidth digits
    "12a",
    "-1",
    "+1",
    "1.0",
    "1e3",
    "0x10",
    " 1",
    "1_000",
    "9" * 16,
    "9" * 400,
]


@pytest.fixture
def admin(api):
    return api.login(*ADMIN)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_preset_id_that_is_not_ascii_digits_is_400(api, admin, value):
    r = api.call("GET", f"/api/presets/{value}", token=admin)
    assert r.status_code == 400, r.data
    assert "ASCII digits" in r.data["message"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_machine_id_that_is_not_ascii_digits_is_400(api, admin, value):
    r = api.call("DELETE", f"/api/machines/{value}", token=admin)
    assert r.status_code == 400, r.data


@pytest.mark.parametrize("name", ["page", "count"])
@pytest.mark.parametrize("value", HOSTILE)
def test_a_paging_number_that_is_not_ascii_digits_is_400(api, admin, name, value):
    r = api.http.get(f"/api/jobs?{name}={value}", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 400, r.body


@pytest.mark.parametrize("value", HOSTILE)
def test_a_job_reference_that_is_neither_id_nor_guid_is_404(api, admin, value):
    r = api.call("GET", f"/api/jobs/{value}", token=admin)
    assert r.status_code == 404, r.data


def test_ascii_digits_within_bounds_still_work(api, admin):
    assert api.call("GET", "/api/presets/1", token=admin).status_code == 200
    assert api.call("GET", "/api/presets/000001", token=admin).status_code == 200
    r = api.http.get("/api/jobs?page=1&count=100", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200
