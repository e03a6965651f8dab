"""The worker bundle droplets fetch at boot: chalicelib and its requirements, as a tarball.

Uploaded to the stage's OE_WORKER_BUNDLE location by provisioning; cloud-init
downloads it through a presigned URL valid for an hour, so droplets need no
credentials to fetch code.
"""

from __future__ import annotations

import functools
import io
import tarfile
from pathlib import Path

from chalicelib.config import settings
from chalicelib.store import storage

ROOT = Path(__file__).resolve().parent.parent
FILES = ("requirements.txt", "requirements-worker.txt")


def build() -> bytes:
    """The tarball of the tree as it is now (built again only when a file changed)."""
    return _tarball(_fingerprint())


def _fingerprint() -> tuple[tuple[str, int, int], ...]:
    """Each file's path, size and mtime: a stat per file, a hundred times cheaper than a gzip
    of the tree (the suite provisions a fresh moto for each of hundreds of tests)."""
    files = [ROOT / name for name in FILES]
    files += [p for p in (ROOT / "chalicelib").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]  # fmt: skip
    return tuple(sorted((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in files))


@functools.lru_cache(maxsize=1)
def _tarball(_stamp: tuple[tuple[str, int, int], ...]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in FILES:
            tar.add(ROOT / name, arcname=name)
        tar.add(
            ROOT / "chalicelib",
            arcname="chalicelib",
            filter=lambda info: None if "__pycache__" in info.name else info,
        )
    return buffer.getvalue()


def upload() -> str:
    location = storage.from_uri(settings().worker_bundle)
    storage.s3().put_object(
        Bucket=location.bucket, Key=location.key, Body=build(), ContentType="application/gzip"
    )
    return location.uri
