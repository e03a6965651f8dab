"""Source and destination parsing."""

from __future__ import annotations

import pytest

from chalicelib.errors import InvalidInput
from chalicelib.store.storage import parse_location

BUCKETS = ("in-bucket", "out-bucket")


def parse(value, **kw):
    return parse_location(
        value, default_bucket="in-bucket", allowed_buckets=BUCKETS, what="source", **kw
    )


@pytest.mark.parametrize(
    "value, bucket, key",
    [
        ("s3://out-bucket/a/b.mp4", "out-bucket", "a/b.mp4"),
        ("s3:///src/tears-of-steel-2s.mp4", "in-bucket", "src/tears-of-steel-2s.mp4"),
        ("src/clip.mp4", "in-bucket", "src/clip.mp4"),
        ("/src/clip.mp4", "in-bucket", "src/clip.mp4"),
        ("s3:///a b+c/ünï%20.mp4", "in-bucket", "a b+c/ünï%20.mp4"),
    ],
)
def test_accepted_spellings(value, bucket, key):
    location = parse(value)
    assert (location.bucket, location.key) == (bucket, key)


@pytest.mark.parametrize(
    "value, message",
    [
        ("s3://someone-elses/x.mp4", "not one this stage uses"),
        ("s3:///a/../../etc/passwd", "'..'"),
        ("s3:///", "not a folder"),
        ("", "empty"),
        ("http://example.com/x.mp4", "s3://bucket/key"),
        ("s3:///a//b.mp4", "empty path segments"),
        ("s3:///a/\x00.mp4", "control characters"),
    ],
)
def test_refused_locations(value, message):
    with pytest.raises(InvalidInput) as refused:
        parse(value)
    assert message in str(refused.value)


def test_destination_is_a_prefix():
    assert parse("s3:///dst/clip", is_prefix=True).key == "dst/clip/"
