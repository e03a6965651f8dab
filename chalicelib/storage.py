"""Where a job reads and writes: S3 locations of the stage's own buckets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.errors import InvalidInput

_MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_location(
    value: str,
    *,
    default_bucket: str,
    allowed_buckets: tuple[str, ...],
    what: str,
    is_prefix: bool = False,
) -> S3Location:
    """Parse `s3://bucket/key`, `s3:///key` or a bare `key`; refuse escapes and other buckets."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is empty")
    value = value.strip()
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        bucket = bucket or default_bucket
    elif "://" in value:
        raise InvalidInput(f"{what} must be s3://bucket/key, s3:///key or a key")
    else:
        bucket, key = default_bucket, value
    if bucket not in allowed_buckets:
        raise InvalidInput(
            f"{what} bucket {bucket!r} is not one this stage uses: {', '.join(allowed_buckets)}"
        )
    key = key.lstrip("/")
    if _CONTROL.search(key) or "\\" in key:
        raise InvalidInput(f"{what} key contains control characters or backslashes")
    if any(part in ("..", ".") for part in key.split("/")):
        raise InvalidInput(f"{what} key must not contain '.' or '..' path segments")
    if "//" in key:
        raise InvalidInput(f"{what} key must not contain empty path segments ('//')")
    if is_prefix:
        if key and not key.endswith("/"):
            key += "/"
    elif not key or key.endswith("/"):
        raise InvalidInput(f"{what} must name an object, not a folder")
    if len(key.encode()) > _MAX_KEY_BYTES:
        raise InvalidInput(f"{what} key is longer than {_MAX_KEY_BYTES} bytes")
    return S3Location(bucket, key)
