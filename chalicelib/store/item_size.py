"""An item's size as DynamoDB counts it against its 400 KB limit: names plus values.

The rules are AWS's ("Item sizes and formats" in the DynamoDB developer guide): a string
or binary counts its bytes, a number about one byte per two significant digits plus one,
a boolean or null one byte, and a list or map three bytes plus one per element on top of
what it holds. Plans and job items are checked against it (tests, and the fan-out's guard),
so a long source's graph never finds the limit in production first.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

ITEM_LIMIT_BYTES = 400 * 1024


def _number(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return (len(digits) + 1) // 2 + 1


def value_bytes(value: dict[str, Any]) -> int:
    """One attribute value in DynamoDB's JSON form (`{"S": "..."}`, `{"N": "1"}`, ...)."""
    ((kind, body),) = value.items()
    if kind == "S":
        return len(body.encode())
    if kind == "N":
        return _number(body)
    if kind == "B":
        return len(body) if isinstance(body, bytes) else len(base64.b64decode(body))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in body)
    if kind == "NS":
        return sum(_number(n) for n in body)
    if kind == "L":
        return 3 + sum(1 + value_bytes(v) for v in body)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_bytes(v) for k, v in body.items())
    raise ValueError(f"not a DynamoDB attribute value type: {kind}")


def item_bytes(item: dict[str, dict[str, Any]]) -> int:
    """A whole item in DynamoDB's JSON form (what `get_item` answers, or PynamoDB's
    `Model.to_dynamodb_dict()`)."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())
