"""Tries: why each try of a job's run or of a task ended, kept on its item.

A run that ends without finishing (ffmpeg killed, the host lost, out of time, a transient
failure) appends one entry to its item's `tries` in the same write that requeues or fails it,
so the job view and the task view say how often the work was tried and why each try ended.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store.models import rfc3339, utcnow

# Why a try ended when its host stopped beating (a crash, a lost droplet, a killed Lambda).
LOST_HOST = "its host was lost (the lease expired with no heartbeat)"


def of(item: Any) -> list[dict[str, Any]]:
    """A job's or a task's ended tries, as plain dicts."""
    return [dict(t.as_dict() if hasattr(t, "as_dict") else t) for t in item.tries or []]


def ended(attribute: Any, why: str) -> Any:
    """The update that records why a try ended, on a job's or a task's `tries` list."""
    return attribute.set((attribute | []).append([{"ended": why, "at": rfc3339(utcnow())}]))
