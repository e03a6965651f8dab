"""moto's slow paths, made quick with the same answers: the local stack's AWS endpoint
(ops/moto_server.py) and the suite's in-process moto (tests/conftest.py) spend their time
in them.

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
- DynamoDB: moto parses an UpdateExpression twice per UpdateItem (in its handler and its
  model), with a tokenizer written in Python. The tree it makes is only read (the model's
  validator works on a deep copy), so one tree per expression serves every update.
- DynamoDB: moto writes each answer by walking the operation's output shape, asking for
  every member of every AttributeValue (ten per attribute): a query of 1,925 tasks took
  3.8 s, and a GetItem 5 ms. DynamoDB's protocol is JSON of the output shape, and moto's
  answer to an item operation already is that JSON (strings, numbers, booleans, lists and
  maps): it is written with json.dumps, as the shape walk would write it. Anything else
  (a blob, a timestamp, an error, another operation) goes the shape walk's way.
  `CHECK` writes both and fails on a difference (tests/integration/test_moto_speed.py).

What moto stores and returns is unchanged.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.sqs.models import Message

_PLAIN = {"S", "N", "BOOL", "NULL", "SS", "NS"}  # types whose stored value is their JSON


def _visible(message: Message) -> bool:
    return time.time() * 1000.0 > message.visible_at


def _delayed(message: Message) -> bool:
    return time.time() * 1000.0 < message.delayed_until


def install(put: Callable[[Any, str, Any], None] = setattr) -> None:
    """Put the quick paths in place: `put` sets each (a test passes `monkeypatch.setattr`)."""
    put(Message, "visible", property(_visible))
    put(Message, "delayed", property(_delayed))
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

    put(Item, "project", project)
    put(UpdateExpressionParser, "make", staticmethod(_parsed))
    put(BaseResponse, "serialized", _serialized)


@functools.lru_cache(maxsize=512)
def _parsed(expression: str) -> Any:
    # A malformed expression raises, and an exception is never cached: moto reports it.
    return _make(expression)


_make = UpdateExpressionParser.make


# The item operations: their answers hold items, keys and capacities, nothing else.
_ITEM_OPERATIONS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
}  # fmt: skip
CHECK = False  # write each answer both ways and compare (the equivalence test sets it)
checked: list[str] = []  # the operations CHECK compared


_NOT_JSON = object()


def _as_json(value: Any) -> Any:
    """`value` without its None members (the shape walk leaves them out), or _NOT_JSON if
    it holds anything but strings, numbers, booleans, lists and maps."""
    kind = type(value)
    if kind is dict:
        out = {}
        for k, v in value.items():
            if v is not None:
                v = _as_json(v)
                if v is _NOT_JSON or type(k) is not str:
                    return _NOT_JSON
                out[k] = v
        return out
    if kind is list:
        items = [_as_json(v) for v in value]
        return _NOT_JSON if any(v is _NOT_JSON for v in items) else items
    return value if kind in (str, bool, int, float) or value is None else _NOT_JSON


_shape_walk = BaseResponse.serialized


@functools.cache
def _output_members(action: str) -> frozenset[str]:
    from moto.core.utils import get_service_model

    return frozenset(get_service_model("dynamodb").operation_model(action).output_shape.members)


def _serialized(self: BaseResponse, action_result: ActionResult) -> Any:
    result = action_result.result
    action = self._get_action() if self.service_name == "dynamodb" else ""
    if action not in _ITEM_OPERATIONS or type(result) is not dict:
        return _shape_walk(self, action_result)
    members = _output_members(action)  # the shape walk writes only the shape's members
    shaped = _as_json({k: v for k, v in result.items() if k in members})
    if shaped is _NOT_JSON:
        return _shape_walk(self, action_result)
    headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
    answer = 200, headers, json.dumps(shaped)
    if CHECK:
        status, walked_headers, body = _shape_walk(self, action_result)
        assert (status, walked_headers) == answer[:2], (action, walked_headers)
        assert json.loads(body) == json.loads(answer[2]), (action, body, answer[2])
        checked.append(action)
    return answer
