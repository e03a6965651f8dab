"""moto's TransactWriteItems backs up only the items a transaction names, not whole tables.

moto (5.x) deep-copies every table a transaction touches before applying it, so that it
can put the tables back if one of the writes fails its condition. A transaction then costs
time in proportion to the table: with a 2-hour ladder's 700 task items, the fan-in's
transactions spent minutes copying. DynamoDB's guarantee is the same either way (all of a
transaction's writes, or none), and so is moto's with this backup: the items it names are
copied before (those it only checks are never written), and put back as they were if the
transaction is cancelled.

UpdateItem's copy of the item it updates is skipped too, unless a table has a stream.
"""

from __future__ import annotations

import copy
import types
from typing import Any

import pytest
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table


def _no_table_copy(streams: list[Table]) -> Any:
    # The transaction's own backup (below) replaces the copy of a whole table. The other
    # copy in moto's DynamoDB models is UpdateItem's of the item before the update, which
    # only a table with a stream reads (to record the old image): the stages have none.
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table) or (isinstance(value, Item) and not streams):
            return value
        return copy.deepcopy(value, memo)

    return deepcopy


def _stream_noted(original: Any, streams: list[Table]) -> Any:
    def set_stream_specification(self: Table, spec: dict[str, Any] | None) -> None:
        original(self, spec)
        if self.stream_shard is not None:
            streams.append(self)

    return set_stream_specification


def _named_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple]:
    """(table, hash, range, a copy of the item or None) for each item a transaction names."""
    named = []
    for entry in transact_items:
        kind, op = next(iter(entry.items()))
        if kind == "ConditionCheck":
            continue  # read, never written: nothing to put back
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue  # moto reports the missing table itself
        key = op.get("Key") or op.get("Item") or {}
        if table.hash_key_attr not in key or (
            table.has_range_key and table.range_key_attr not in key
        ):
            continue  # a malformed request: moto refuses it before writing anything
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.has_range_key else None
        before = table.get_item(hash_value, range_value)
        named.append((table, hash_value, range_value, copy.deepcopy(before)))
    return named


def _put_back(named: list[tuple]) -> None:
    for table, hash_value, range_value, before in reversed(named):
        if before is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = before
        else:
            table.items[hash_value] = before


def backups_of_named_items(monkeypatch: pytest.MonkeyPatch) -> None:
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        named = _named_items(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            _put_back(named)
            raise

    streams: list[Table] = []  # this test's tables made with a stream, or given one
    monkeypatch.setattr(Table, "set_stream_specification",
                        _stream_noted(Table.set_stream_specification, streams))  # fmt: skip
    shim = types.SimpleNamespace(**{**vars(copy), "deepcopy": _no_table_copy(streams)})
    monkeypatch.setattr(dynamodb_models, "copy", shim)
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)
