"""Machine routes against a fake DigitalOcean API on loopback."""

from __future__ import annotations

import boto3
import pytest
import yaml

from chalicelib.config import settings
from tests.conftest import ADMIN
from tests.fake_digitalocean import FakeDigitalOcean

DO_TOKEN = "do-test-token"
API_URL = "https://api.test/local/api"


@pytest.fixture
def fake_do(aws, monkeypatch):
    fake = FakeDigitalOcean(DO_TOKEN, page_size=2)
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake.start())
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=settings().do_token_parameter, Value=DO_TOKEN, Type="SecureString")
    ssm.put_parameter(Name=settings().api_url_parameter, Type="String", Value=API_URL)
    yield fake
    fake.stop()


@pytest.fixture
def operator(api):
    return api.user("ops", "operator")


def test_guests_may_not_touch_machines(api, fake_do):
    guest = api.user("gail", "guest")
    for method, path in [("GET", "/api/machines"), ("POST", "/api/machines"), ("DELETE", "/api/machines"),
                         ("GET", "/api/machines/sizes"), ("DELETE", "/api/machines/1")]:  # fmt: skip
        assert (
            api.call(method, path, {"region": "nyc3", "size": "c-2"}, token=guest).status_code
            == 403
        )
    assert fake_do.requests == []


def test_create_machines_with_cloud_init_and_tags(api, fake_do, operator):
    body = {"provider": "digitalocean", "region": "nyc3", "size": "c-2", "count": 2}
    r = api.call("POST", "/api/machines", body, token=operator)
    assert r.status_code == 200, r.data
    assert [m["provider"] for m in r.data["machine"]] == ["digitalocean"] * 2
    creates = [q for q in fake_do.requests if q["method"] == "POST"]
    assert len(creates) == 2  # one at a time: each droplet gets its own user data
    create = creates[0]
    assert create["body"]["tags"][:2] == ["openencoder", "openencoder-local"]
    assert create["body"]["size"] == "c-2"
    document = yaml.safe_load(create["body"]["user_data"])
    assert create["body"]["user_data"].startswith("#cloud-config\n")
    assert "openencoder-worker.service" in " ".join(map(str, document["runcmd"]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"provider": "aws"}, "provider must be one of: digitalocean"),
        ({"region": "mars1"}, "region must be one of: nyc3, sfo3"),
        ({"region": "sfo1"}, "region must be one of"),
        ({"size": "huge"}, "size must be one of (in nyc3): c-2, c-4, s-1vcpu-1gb"),
        ({"count": 11}, "count"),
        ({"count": 0}, "count"),
    ],
)
def test_bad_machine_requests_are_400_naming_the_allowed_values(
    api, fake_do, operator, change, message
):
    body = {"provider": "digitalocean", "region": "nyc3", "size": "c-2", "count": 1, **change}
    r = api.call("POST", "/api/machines", body, token=operator)
    assert r.status_code == 400
    assert message in r.data["message"]
    assert not [q for q in fake_do.requests if q["method"] == "POST"]


def test_list_pages_through_every_tagged_droplet(api, fake_do, operator):
    for _ in range(5):
        fake_do.add_droplet()
    fake_do.add_droplet(name="someone-else", tags=["web"])
    fake_do.add_droplet(tags=["openencoder", "openencoder-prod"])  # another stage's
    r = api.call("GET", "/api/machines", token=operator)
    assert r.status_code == 200
    machines = r.data["machines"]
    assert len(machines) == 5
    assert set(machines[0]) == {
        "id",
        "name",
        "status",
        "size_slug",
        "created_at",
        "region",
        "tags",
        "provider",
    }
    assert machines[0]["region"] == "New York 3"
    pages = [
        q
        for q in fake_do.requests
        if q["path"].rstrip("/") == "/v2/droplets" and q["method"] == "GET"
    ]
    assert len(pages) == 3  # 2 + 2 + 1 at the fake's page size of 2


def test_delete_one_and_refuse_droplets_that_are_not_ours(api, fake_do, operator):
    ours = fake_do.add_droplet()
    theirs = fake_do.add_droplet(name="web", tags=["web"])
    other_stage = fake_do.add_droplet(tags=["openencoder", "openencoder-prod"])
    r = api.call("DELETE", f"/api/machines/{ours['id']}", token=operator)
    assert r.status_code == 200 and r.data == {
        "machine": {"id": ours["id"], "provider": "digitalocean"}
    }
    for droplet in (theirs, other_stage):
        r = api.call("DELETE", f"/api/machines/{droplet['id']}", token=operator)
        assert r.status_code == 404 and "openencoder-local" in r.data["message"]
    assert api.call("DELETE", "/api/machines/999999", token=operator).status_code == 404
    assert set(fake_do.droplets) == {theirs["id"], other_stage["id"]}


@pytest.mark.parametrize("path", ["/api/machines", "/api/machine"])
def test_delete_all_removes_only_tagged_droplets(api, fake_do, operator, path):
    fake_do.add_droplet()
    fake_do.add_droplet()
    web = fake_do.add_droplet(name="web", tags=["web"])
    prod = fake_do.add_droplet(tags=["openencoder", "openencoder-prod"])
    r = api.call("DELETE", path, token=operator)
    assert r.status_code == 200 and r.data == {"deleted": True}
    assert set(fake_do.droplets) == {web["id"], prod["id"]}


def test_regions_sizes_and_pricing(api, fake_do, operator):
    regions = api.call("GET", "/api/machines/regions", token=operator).data["regions"]
    assert {
        "name": "New York 3",
        "slug": "nyc3",
        "sizes": ["s-1vcpu-1gb", "c-2", "c-4"],
        "available": True,
    } in regions
    sizes = api.call("GET", "/api/machines/sizes", token=operator).data["sizes"]
    assert {
        "slug": "c-2",
        "available": True,
        "price_monthly": 42.0,
        "price_hourly": 0.0625,
    } in sizes
    fake_do.add_droplet(size="c-2")
    fake_do.add_droplet(size="c-4")
    pricing = api.call("GET", "/api/machines/pricing", token=operator).data
    assert pricing["count"] == 2
    assert pricing["price_hourly"] == pytest.approx(0.1875) and pricing["price_monthly"] == 126.0


@pytest.mark.parametrize("status, expected", [(401, 502), (429, 429), (500, 502)])
def test_digitalocean_errors_become_clear_answers(api, fake_do, operator, status, expected):
    fake_do.fail_next(status)
    r = api.call("GET", "/api/machines", token=operator)
    assert r.status_code == expected
    assert "DigitalOcean" in r.data["message"]


def test_no_token_means_machines_not_configured(api, aws, operator):
    r = api.call("GET", "/api/machines", token=operator)
    assert r.status_code == 503 and "machines not configured" in r.data["message"]


def test_admins_may_manage_machines_too(api, fake_do):
    admin = api.login(*ADMIN)
    assert api.call("GET", "/api/machines", token=admin).status_code == 200


def test_a_digitalocean_that_does_not_answer_times_out_as_502(api, fake_do, operator, monkeypatch):
    monkeypatch.setenv("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "0.5")
    fake_do.answer_slowly(3)
    r = api.call("GET", "/api/machines", token=operator)
    assert r.status_code == 502
    assert "did not answer" in r.data["message"]


# --- the same limits as the reconcile -------------------------------------------------


def test_creating_past_the_maximum_droplet_count_is_409_with_the_numbers(api, fake_do, operator):
    fake_do.add_droplet()
    fake_do.add_droplet()
    fake_do.add_droplet(tags=["openencoder", "openencoder-prod"])  # not this stage's: not counted
    body = {"provider": "digitalocean", "region": "nyc3", "size": "c-2", "count": 2}
    r = api.call("POST", "/api/machines", body, token=operator)
    assert r.status_code == 409
    assert r.data["message"] == (
        "2 droplets are running and the maximum is 3 (OE_DROPLETS_MAX): 2 more would make 4"
    )
    assert not [q for q in fake_do.requests if q["method"] == "POST"]
    r = api.call("POST", "/api/machines", {**body, "count": 1}, token=operator)
    assert r.status_code == 200 and len(r.data["machine"]) == 1


def test_creating_past_the_hourly_budget_is_409_with_the_numbers(
    api, fake_do, operator, settings_env
):
    settings_env(OE_DROPLETS_MAX="10", OE_DROPLETS_HOURLY_BUDGET="0.2")
    fake_do.add_droplet(size="c-2")  # $0.0625/h
    body = {"provider": "digitalocean", "region": "nyc3", "size": "c-4", "count": 2}
    r = api.call("POST", "/api/machines", body, token=operator)
    assert r.status_code == 409
    assert r.data["message"] == (
        "the pool costs $0.0625/h and the budget is $0.2000/h (OE_DROPLETS_HOURLY_BUDGET): "
        "2 x c-4 more would cost $0.3125/h"
    )
    assert not [q for q in fake_do.requests if q["method"] == "POST"]
    r = api.call("POST", "/api/machines", {**body, "count": 1}, token=operator)
    assert r.status_code == 200


def test_creating_while_the_reconcile_changes_the_pool_is_409(api, fake_do, operator, monkeypatch):
    import threading
    import time

    from chalicelib.fleet import droplet_pool, pool_lock

    monkeypatch.setattr(droplet_pool, "LOCK_WAIT_SECONDS", 1.0)  # a reconcile's run, shorter
    token = pool_lock.acquire(time.time())
    body = {"provider": "digitalocean", "region": "nyc3", "size": "c-2", "count": 1}
    r = api.call("POST", "/api/machines", body, token=operator)
    assert r.status_code == 409 and r.headers["Retry-After"] == "60"
    # A run that lets go while the route waits: the route takes the lock and creates.
    releaser = threading.Timer(0.3, pool_lock.release, args=(token,))
    releaser.start()
    assert api.call("POST", "/api/machines", body, token=operator).status_code == 200
    releaser.join()
    assert api.call("POST", "/api/machines", body, token=operator).status_code == 200
