"""The HTTP face of the domain: request parsing, role checks and responses.

Submodules load on first use (PEP 562): Chalice deploys one app.py to every
function, so the encode and schedule functions should not pay at cold start
for the JWT, pydantic and route code that only the API function runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = frozenset(
    {
        "accounts",
        "dashboard",
        "droplets",
        "http",
        "jobs",
        "machines",
        "openapi",
        "presets",
        "schemas",
        "stage",
        "uploads",
        "webhooks",
    }
)


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
