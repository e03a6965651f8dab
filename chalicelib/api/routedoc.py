"""Route metadata stamped where each route is defined: its role, summary and request shape.

`app.py` stamps every view with `@doc(...)`; /api/openapi.json is built from
`app.routes` and these stamps, and a test checks that each route's stamped role is
the role its controller enforces. Kept free of pydantic and Chalice so every
function's cold start can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

# public: anyone; guest/operator/admin: a user's JWT with at least that role;
# droplet: a worker droplet's own secret (`Authorization: Droplet <secret>`), no user.
ROLES = ("public", "guest", "operator", "admin", "droplet")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteDoc:
    role: str  # public | guest | operator | admin | droplet
    summary: str
    body: str | None = None  # a model of chalicelib.api.schemas, by name
    query: tuple[str, ...] = ()  # query parameters, by name (see openapi.QUERY)
    status: int = 200  # the success status
    page: bool = False  # a web page, not an API operation: left out of the document
    headers: tuple[str, ...] = ()  # request headers, by name (see openapi.HEADERS)
    token_optional: bool = False  # the role's token may be left out for another proof (a password)


def doc(role: str, summary: str, *, body: str | None = None, query: tuple[str, ...] = (),
        status: int = 200, page: bool = False, headers: tuple[str, ...] = (),
        token_optional: bool = False) -> Callable[[F], F]:  # fmt: skip
    """Stamp a view function with what /api/openapi.json says about its route."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")

    def stamp(view: F) -> F:
        meta = RouteDoc(role, summary, body, query, status, page, headers, token_optional)
        view.route_doc = meta  # type: ignore[attr-defined]
        return view

    return stamp


def of(view: Any) -> RouteDoc | None:
    return getattr(view, "route_doc", None)
