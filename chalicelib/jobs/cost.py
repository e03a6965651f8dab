"""What a job's runs cost: GB-seconds and requests as Lambda bills them, and USD at the
configured prices (OE_LAMBDA_USD_PER_GB_SECOND, OE_LAMBDA_USD_PER_REQUEST).

Each run (the job's first task, every graph task) records its invocation seconds and the
memory it ran with; its GB-seconds and one request are added to the job in the same
transaction that counts it done, so the job's sums are exact whatever order tasks end in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import graph_settings

MB_PER_GB = 1024  # Lambda bills memory in GB of 1,024 MB


@dataclass(frozen=True)
class Usage:
    """One run: how long its invocation took and the memory it was given."""

    seconds: float
    memory_mb: int

    @property
    def gb_seconds(self) -> float:
        return round(max(self.seconds, 0.0) * self.memory_mb / MB_PER_GB, 3)


def memory_mb(context: Any = None) -> int:
    """The encode function's configured memory, from its Lambda context; elsewhere the
    host's setting (OE_MEMORY_MB)."""
    configured = getattr(context, "memory_limit_in_mb", None)
    try:
        return int(configured) if configured else graph_settings().memory_mb
    except (TypeError, ValueError):
        return graph_settings().memory_mb


def actual(gb_seconds: Any, requests: Any) -> dict[str, Any]:
    """The job view's `cost.actual`: its sums, and their price."""
    g = graph_settings()
    gb = float(gb_seconds or 0)
    count = int(requests or 0)
    usd = gb * g.usd_per_gb_second + count * g.usd_per_request
    return {"gb_seconds": round(gb, 3), "requests": count, "usd": round(usd, 6)}
