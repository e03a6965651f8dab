"""Job counts by status, kept in counter items that each status change updates in its
own transaction (see `lifecycle`), so reading them never Scans the jobs table.

Each status has SHARDS counter items and a change picks one at random: one DynamoDB
item takes about 1,000 writes a second, and concurrent transactions on one item
conflict. A read sums every shard with one BatchGetItem.
"""

from __future__ import annotations

import random
from typing import Any

from chalicelib.store.models import SystemItem

SHARDS = 8  # never lower it: reads sum shards 0..SHARDS-1, so counts in higher ones vanish


def _name(status: str, shard: int) -> str:
    return f"stats#jobs#{status}#{shard}"


def changes(old: str | None, new: str | None) -> list[tuple[SystemItem, list[Any]]]:
    """Counter updates for one job moving from `old` to `new` (None: not counted)."""
    if old == new:
        return []
    updates = []
    for status, delta in ((old, -1), (new, 1)):
        if status is not None:
            item = SystemItem(_name(status, random.randrange(SHARDS)))
            updates.append((item, [SystemItem.value.add(delta)]))
    return updates


def counts(statuses: tuple[str, ...]) -> dict[str, int]:
    """Jobs per status (every status in `statuses`, zero when none) and their total."""
    keys = [_name(status, shard) for status in statuses for shard in range(SHARDS)]
    found = {item.name: int(item.value or 0) for item in SystemItem.batch_get(keys)}
    result = {
        status: sum(found.get(_name(status, shard), 0) for shard in range(SHARDS))
        for status in statuses
    }
    result["total"] = sum(result.values())
    return result
