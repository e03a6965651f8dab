"""The web dashboard: one HTML page and its static assets, served by the API itself.

The page is plain JavaScript modules and CSS from `chalicelib/dashboard/` (no build
step). `hls.js` is hls.js 1.7.4 (`dist/hls.min.mjs` of the npm package, unmodified;
Apache-2.0, its licence served beside it as `hls-license.txt`). Files are read on the
first dashboard request, never at import, so the API
function's cold start does not grow. Every asset URL carries the version of the
whole asset set (a hash of every file), so assets are cached for a year and a new
deploy is picked up at once: the page itself is never cached.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from chalice import Response

from chalicelib.config import Settings, settings

ASSETS = Path(__file__).resolve().parent.parent / "dashboard"
# A flat folder and a strict name grammar: no separators, no dots but the extension.
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}\.(js|css|svg|txt)$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")
_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "txt": "text/plain; charset=utf-8",  # the vendored player's licence
}
_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Bundle:
    version: str
    files: dict[str, bytes]  # allowed name -> content
    index: str


@cache
def bundle() -> Bundle:
    """Read the asset folder once per container; the version hashes names and contents."""
    files = {
        path.name: path.read_bytes()
        for path in sorted(ASSETS.iterdir())
        if path.is_file() and _NAME.match(path.name)
    }
    digest = hashlib.sha256()
    for name, content in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    version = digest.hexdigest()[:16]
    # Relative URLs, so the page works under any API Gateway stage prefix.
    index = (ASSETS / "index.html").read_text().replace("{{assets}}", f"dashboard/assets/{version}")
    return Bundle(version=version, files=files, index=index)


def storage_origins(s: Settings) -> list[str]:
    """Origins the browser talks to for presigned uploads, downloads and previews."""
    if s.aws_endpoint:  # the local stack (or any S3-compatible endpoint): path-style URLs
        parts = urlsplit(s.aws_endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    origins = []
    for bucket in s.buckets:
        # boto3 signs virtual-hosted URLs, with or without the region in the host.
        origins += [
            f"https://{bucket}.s3.amazonaws.com",
            f"https://{bucket}.s3.{s.region}.amazonaws.com",
        ]
    return origins


@cache
def security_headers() -> dict[str, str]:
    storage = " ".join(storage_origins(settings()))
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src 'self' {storage}",
            # blob: for media only: hls.js hands the <video> a MediaSource by an object URL,
            # and the browser's own HLS player is given the job's playlists as blobs (each
            # rewritten to presigned links). hls.js runs without a worker, so no worker-src.
            f"media-src 'self' {storage} blob:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _not_found(what: str) -> Response:
    return Response(
        body={"status": 404, "message": what},
        status_code=404,
        headers={
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            **security_headers(),
        },
    )


def page() -> Response:
    """The single page; never cached, so a deploy's new asset version is seen at once."""
    return Response(
        body=bundle().index,
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            **security_headers(),
        },
    )


def asset(version: str, name: str) -> Response:
    """One asset of the current version, cacheable for a year; anything else is a 404."""
    current = bundle()
    if not _VERSION.match(version or "") or version != current.version:
        # An old page asking after a deploy: not found, so nothing stale is cached.
        return _not_found("no such dashboard version: reload the page")
    content = current.files.get(name) if _NAME.match(name or "") else None
    if content is None:
        return _not_found("no such dashboard asset")
    return Response(
        body=content.decode(),
        status_code=200,
        headers={
            "Content-Type": _TYPES[name.rsplit(".", 1)[1]],
            "Cache-Control": _IMMUTABLE,
            **security_headers(),
        },
    )
