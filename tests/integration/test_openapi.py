"""/api/openapi.json is built from app.routes: every route is stamped, listed, and enforces
the role its stamp documents."""

from __future__ import annotations

import re

from app import app
from chalicelib.api import openapi, routedoc
from tests.conftest import ADMIN

SAMPLE = {
    "job_id": "1",
    "preset_id": "1",
    "user_id": "nobody-here",
    "upload_id": "0" * 20,
    "webhook_id": "wh_" + "0" * 20,
    "machine_id": "1",
}
BELOW = {"guest": None, "operator": "guest", "admin": "operator"}


def all_routes():
    return [(path, method, entry.view_function)
            for path, methods in app.routes.items() for method, entry in methods.items()]  # fmt: skip


def test_every_route_is_stamped_and_the_document_lists_exactly_the_api_routes():
    document = openapi.document(app.routes)
    stamped = {(path, method): routedoc.of(view) for path, method, view in all_routes()}
    assert None not in stamped.values(), [k for k, v in stamped.items() if v is None]
    api_routes = {(p, m.lower()) for (p, m), meta in stamped.items() if not meta.page}
    documented = {(p, m) for p, ops in document["paths"].items() for m in ops}
    assert documented == api_routes
    for (path, method), meta in stamped.items():
        if meta.page:
            continue
        operation = document["paths"][path][method.lower()]
        assert operation["x-role"] == meta.role and operation["summary"] == meta.summary
        assert ("security" in operation) == (meta.role != "public")
        if meta.role == "droplet":
            assert operation["security"] == [{"droplet": []}]
        named = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert named == re.findall(r"{(\w+)}", path)
        if meta.body:
            assert meta.body in document["components"]["schemas"]
    pages = {p for (p, _m), meta in stamped.items() if meta.page}
    assert pages == set(openapi.NON_API_PATHS)


def test_the_document_is_served_and_its_references_resolve(api):
    document = api.call("GET", "/api/openapi.json").data
    text = str(document)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in document["components"]["schemas"], name


def test_each_route_enforces_the_role_its_stamp_documents(api):
    tokens = {"guest": api.user("role-guest", "guest"), "operator": api.user("role-op", "operator"),
              "admin": api.login(*ADMIN), None: None}  # fmt: skip
    checked = 0
    for path, method, view in all_routes():
        meta = routedoc.of(view)
        if meta.page:
            continue
        url = re.sub(r"{(\w+)}", lambda m: SAMPLE[m.group(1)], path)
        if meta.role == "public":
            r = api.call(method, url, {})
            assert r.status_code not in (401, 403), (method, path, r.data)
            continue
        if meta.role == "droplet":  # no user token opens it: only a droplet's own secret
            for token in (None, tokens["admin"]):
                r = api.call(method, url, {}, token=token)
                assert r.status_code == 401, (method, path, r.data)
            continue
        below = api.call(method, url, {}, token=tokens[BELOW[meta.role]])
        expected = 401 if BELOW[meta.role] is None else 403
        assert below.status_code == expected, (method, path, meta.role, below.data)
        allowed = api.call(method, url, {}, token=tokens[meta.role])
        assert "this needs the" not in str(allowed.data), (method, path, meta.role, allowed.data)
        assert allowed.status_code < 500 or allowed.status_code == 503, (method, path, allowed.data)
        checked += 1
    assert checked > 30
