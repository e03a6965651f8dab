"""Ids that are unique without a counter: time-ordered, in the style of rs/xid."""

import os
import time

_B32HEX = "0123456789abcdefghijklmnopqrstuv"


def new_guid() -> str:
    """A 20-character, time-ordered id in the style of rs/xid (base32hex of 12 bytes)."""
    raw = int(time.time()).to_bytes(4, "big") + os.urandom(8)
    number = int.from_bytes(raw, "big")
    return "".join(_B32HEX[(number >> (5 * i)) & 31] for i in reversed(range(20)))


def is_guid(ref: str) -> bool:
    """Whether `ref` could be a guid (cheap: checked before a lookup by guid)."""
    return len(ref) == 20 and all(c in _B32HEX for c in ref)
