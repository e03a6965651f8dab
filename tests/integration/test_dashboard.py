"""The dashboard's serving: content types, caching, CSP, the asset allow-list, import cost."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.api import dashboard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def http():
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as client:
        yield client.http


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(dashboard/assets/[^"]+)"', html)


def test_the_page_is_html_never_cached_with_a_strict_policy(http):
    r = http.get("/dashboard")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(
        part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in r.headers["Content-Security-Policy"]
    assert "*" not in r.headers["Content-Security-Policy"]
    html = r.body.decode()
    # No inline script or style for the policy to refuse: every script has a src.
    assert "<style" not in html and " style=" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert len(asset_urls(html)) == 3


def test_assets_have_their_types_and_are_cached_for_a_year(http):
    html = http.get("/dashboard").body.decode()
    types = {}
    for url in asset_urls(html):
        r = http.get(f"/{url}")
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        types[url.rsplit(".", 1)[1]] = r.headers["Content-Type"]
    assert types == {
        "js": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml",
    }


def test_every_module_the_page_imports_is_served_under_the_same_version(http):
    version = dashboard.bundle().version
    app_js = http.get(f"/dashboard/assets/{version}/app.js").body.decode()
    imported = re.findall(r'from "\./([^"]+)"', app_js)
    assert "api.js" in imported and "page-jobs.js" in imported
    for name in imported:
        assert http.get(f"/dashboard/assets/{version}/{name}").status_code == 200, name


def test_the_vendored_player_and_its_licence_are_served_and_blob_is_for_media_only(http):
    version = dashboard.bundle().version
    player = http.get(f"/dashboard/assets/{version}/player.js").body.decode()
    # hls.js is imported by the player on first use, under the same version.
    assert re.findall(r'import\("\./([^"]+)"\)', player) == ["hls.js"]
    js = http.get(f"/dashboard/assets/{version}/hls.js")
    assert js.status_code == 200 and js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    licence = http.get(f"/dashboard/assets/{version}/hls-license.txt")
    assert licence.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Apache License" in licence.body.decode()
    policy = dict(
        part.strip().split(" ", 1) for part in js.headers["Content-Security-Policy"].split(";")
    )
    # MSE's object URL and the native player's rewritten playlists; nothing else takes blob:.
    assert policy["media-src"].split()[-1] == "blob:"
    assert not [k for k, v in policy.items() if "blob:" in v and k != "media-src"]
    assert "worker-src" not in policy  # hls.js runs without a worker


@pytest.mark.parametrize(
    "name",
    [
        "index.html",  # the template is served only as the page
        "..%2Fapi%2Fhttp.py",
        "%2E%2E%2Fconfig.py",
        "app.JS",
        "app.js.map",
        ".hidden.js",
        "missing.js",
        "app.js%00.css",
    ],
)
def test_names_outside_the_allow_list_are_not_found(http, name):
    version = dashboard.bundle().version
    r = http.get(f"/dashboard/assets/{version}/{name}")
    assert r.status_code == 404
    assert r.headers["Cache-Control"] == "no-store"


def test_an_old_version_is_not_found_so_nothing_stale_is_cached(http):
    r = http.get("/dashboard/assets/0123456789abcdef/app.js")
    assert r.status_code == 404 and "reload" in r.json_body["message"]
    assert http.get("/dashboard/assets/..%2F..%2F/app.js").status_code == 404


def test_the_version_changes_when_any_asset_changes(tmp_path, monkeypatch):
    for path in dashboard.ASSETS.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(dashboard, "ASSETS", tmp_path)
    dashboard.bundle.cache_clear()
    try:
        before = dashboard.bundle().version
        (tmp_path / "ui.js").write_text((tmp_path / "ui.js").read_text() + "\n// changed\n")
        dashboard.bundle.cache_clear()
        after = dashboard.bundle()
        assert after.version != before and f"dashboard/assets/{after.version}/" in after.index
    finally:
        dashboard.bundle.cache_clear()


def test_storage_origins_come_from_settings_not_a_wildcard():
    from chalicelib.config import Settings, settings

    local = settings()
    fields = {**local.__dict__, "aws_endpoint": "http://127.0.0.1:4566"}
    assert dashboard.storage_origins(Settings(**fields)) == ["http://127.0.0.1:4566"]
    fields = {
        **fields,
        "aws_endpoint": None,
        "input_bucket": "in-b",
        "output_bucket": "out-b",
        "region": "eu-west-1",
    }
    origins = dashboard.storage_origins(Settings(**fields))
    assert "https://in-b.s3.eu-west-1.amazonaws.com" in origins
    assert "https://out-b.s3.amazonaws.com" in origins
    assert all("*" not in origin for origin in origins)


def test_the_dashboard_is_left_out_of_the_openapi_document_as_a_web_page():
    from app import app
    from chalicelib.api import openapi

    served = {path for path in app.routes if path.startswith("/dashboard")}
    assert served == set(openapi.NON_API_PATHS)
    assert not served & set(openapi.document(app.routes)["paths"])


def test_importing_the_app_reads_no_dashboard_file():
    code = (
        "import builtins, io, pathlib, sys\n"
        "opened = []\n"
        "real = io.open\n"
        "def spy(file, *a, **k):\n"
        "    opened.append(str(file)); return real(file, *a, **k)\n"
        "builtins.open = io.open = spy\n"
        "pathlib.Path.read_bytes = lambda self: opened.append(str(self)) or b''\n"
        "import app\n"
        "assert 'chalicelib.api.dashboard' not in sys.modules, 'imported at cold start'\n"
        "assert not [f for f in opened if '/dashboard/' in f], opened\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_buckets_allow_the_dashboards_origins_only_and_expose_etags(aws):
    import dataclasses

    import boto3

    from chalicelib.config import settings
    from ops import provision

    s3 = boto3.client("s3")
    s = dataclasses.replace(settings(), dashboard_origins=("https://encoder.example.com",))
    api_id = boto3.client("apigateway").create_rest_api(name="openencoder")["id"]
    said: list[str] = []
    provision.bucket_cors(s, said.append)
    (rule,) = s3.get_bucket_cors(Bucket=s.input_bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == sorted(
        ["https://encoder.example.com", f"https://{api_id}.execute-api.{s.region}.amazonaws.com"]
    )
    assert set(rule["AllowedMethods"]) == {"GET", "HEAD", "PUT"}
    assert "ETag" in rule["ExposeHeaders"] and "*" not in str(rule)
    (rule,) = s3.get_bucket_cors(Bucket=s.output_bucket)["CORSRules"]
    assert set(rule["AllowedMethods"]) == {"GET", "HEAD"}
    assert len(said) == 2
    provision.bucket_cors(s, said.append)
    assert len(said) == 2  # already so: nothing changed
    boto3.client("apigateway").delete_rest_api(restApiId=api_id)
    provision.bucket_cors(dataclasses.replace(s, dashboard_origins=()), said.append)
    for bucket in s.buckets:
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_cors(Bucket=bucket)
