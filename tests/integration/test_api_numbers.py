"""Numbers in paths and query strings: ASCII digits within bounds, anything else a 400."""

from __future__ import annotations

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


def bad_answers(api, token: str, method: str, template: str, expected: int) -> dict[str, int]:
    """Every hostile value through one route; the values that did not get `expected`."""
    headers = {"Authorization": f"Bearer {token}"}
    wrong = {}
    for value in HOSTILE:
        answer = getattr(api.http, method)(template.format(value), headers=headers)
        if answer.status_code != expected:
            wrong[value] = answer.status_code
    return wrong


# One test per route, looping over the values: each test provisions moto afresh.
def test_ids_and_paging_numbers_that_are_not_ascii_digits_are_400(api):
    admin = api.login(*ADMIN)
    assert bad_answers(api, admin, "get", "/api/presets/{}", 400) == {}
    assert bad_answers(api, admin, "delete", "/api/machines/{}", 400) == {}
    assert bad_answers(api, admin, "get", "/api/jobs?page={}", 400) == {}
    assert bad_answers(api, admin, "get", "/api/jobs?count={}", 400) == {}
    r = api.call("GET", "/api/presets/²", token=admin)
    assert "ASCII digits" in r.data["message"]


def test_a_job_reference_that_is_neither_id_nor_guid_is_404(api):
    admin = api.login(*ADMIN)
    assert bad_answers(api, admin, "get", "/api/jobs/{}", 404) == {}


def test_ascii_digits_within_bounds_still_work(api):
    admin = api.login(*ADMIN)
    assert api.call("GET", "/api/presets/1", token=admin).status_code == 200
    assert api.call("GET", "/api/presets/000001", token=admin).status_code == 200
    r = api.http.get("/api/jobs?page=1&count=100", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200
