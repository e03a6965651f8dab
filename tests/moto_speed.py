"""Two of moto's slow paths, made quick with the same answers (the suite's hot spots).

- SQS: moto reads `Message.visible` and `Message.delayed` through `unix_time_millis()`,
  which builds two `datetime` objects per call, and each SendMessage reads the queue's
  attributes (for ContentBasedDeduplication), which counts the queue's visible, delayed
  and in-flight messages: each send walks every message three times. With a 2-hour
  ladder's 1,900 messages on one queue, the fan-out spent most of a minute in those
  datetimes. The same comparison against `time.time()` (the same epoch milliseconds)
  gives the same answers at a fraction of the cost.
- DynamoDB: moto answers a projection (GetItem's ProjectionExpression) by converting the
  whole item to plain JSON, a deep copy, once per projected name. A projection of
  top-level names of plain types is those attributes, as stored: picked directly.

What moto stores and returns is unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from moto.dynamodb.models.dynamo_type import Item
from moto.sqs.models import Message

_PLAIN = {"S", "N", "BOOL", "NULL", "SS", "NS"}  # types whose stored value is their JSON


def _visible(message: Message) -> bool:
    return time.time() * 1000.0 > message.visible_at


def _delayed(message: Message) -> bool:
    return time.time() * 1000.0 < message.delayed_until


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Message, "visible", property(_visible))
    monkeypatch.setattr(Message, "delayed", property(_delayed))
    original = Item.project

    def project(self: Item, projection_expressions: list[list[str]]) -> Item:
        names = [path[0] for path in projection_expressions if len(path) == 1]
        picked = {n: self.attrs[n] for n in names if n in self.attrs}
        if len(names) < len(projection_expressions) or any(
            v.type not in _PLAIN for v in picked.values()
        ):
            return original(self, projection_expressions)  # nested or binary: moto's own way
        attrs: dict[str, Any] = {n: v.to_json() for n, v in picked.items()}
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=attrs)

    monkeypatch.setattr(Item, "project", project)
