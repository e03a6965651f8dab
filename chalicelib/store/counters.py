"""Atomic counters kept in the system table (job and preset ids, totals)."""

from __future__ import annotations

from chalicelib.store.models import SystemItem


def next_value(name: str) -> int:
    """Increment counter `name` atomically and return its new value."""
    item = SystemItem(name)
    item.update(actions=[SystemItem.value.add(1)])
    return int(item.value)


def current_value(name: str) -> int:
    try:
        return int(SystemItem.get(name, consistent_read=True).value)
    except SystemItem.DoesNotExist:
        return 0
