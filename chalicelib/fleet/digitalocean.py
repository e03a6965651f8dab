"""DigitalOcean droplets for long encodes, through python-digitalocean.

The token comes from SSM. `DIGITALOCEAN_END_POINT` (honoured by the library)
points the client at a fake API in tests and in the local stack. Every call
has a timeout, and DigitalOcean's errors become clear API answers.

Droplets carry `openencoder` and their stage's tag (`openencoder-<stage>`); every
list and delete here sees only the stage's own, so two stages on one account
never touch each other's droplets.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chalicelib.config import settings
from chalicelib.errors import InvalidInput, NotFound, OpenEncoderError, TooManyRequests, Unavailable
from chalicelib.store.secret_params import digitalocean_token

log = logging.getLogger("openencoder.digitalocean")
TAG = "openencoder"
WORKER_NAME = "openencoder-worker"
IMAGE = os.environ.get("OE_DROPLET_IMAGE", "ubuntu-24-04-x64")
TIMEOUT_SECONDS = "10"
PROVIDERS = ("digitalocean",)
T = TypeVar("T")


class BadGateway(OpenEncoderError):
    status = 502


@dataclass(frozen=True)
class Machine:
    id: int
    name: str
    status: str
    size_slug: str
    created_at: str
    region: str
    tags: list[str]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "size_slug": self.size_slug,
            "created_at": self.created_at,
            "region": self.region,
            "tags": self.tags,
            "provider": "digitalocean",
        }


def _manager() -> Any:
    import digitalocean

    token = digitalocean_token()
    if not token:
        raise Unavailable("machines not configured: set the DigitalOcean token in SSM")
    # python-digitalocean reads its timeout from this variable on every call.
    os.environ.setdefault("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", TIMEOUT_SECONDS)
    return digitalocean.Manager(token=token)


def _call(action: str, func: Callable[[], T]) -> T:
    """Run a DigitalOcean call; map its failures to answers a client can act on."""
    import digitalocean
    import requests

    try:
        return func()
    except digitalocean.NotFoundError:
        raise NotFound(f"DigitalOcean has no such resource ({action})") from None
    except digitalocean.DataReadError as exc:
        message = str(exc)
        lowered = message.lower()
        log.warning("DigitalOcean refused %s: %s", action, message)
        if "rate" in lowered or "too many" in lowered:
            raise TooManyRequests(
                f"DigitalOcean is rate limiting us ({action}): try again in a minute",
                headers={"Retry-After": "60"},
            ) from None
        if "authenticate" in lowered or "unauthorized" in lowered:
            raise BadGateway(
                f"DigitalOcean refused the configured token ({action}): update it in SSM"
            ) from None
        if "unprocessable" in lowered or "invalid" in lowered:
            raise InvalidInput(f"DigitalOcean refused {action}: {message}") from None
        raise BadGateway(f"DigitalOcean failed {action}: {message}") from None
    except requests.RequestException as exc:
        raise BadGateway(
            f"DigitalOcean did not answer {action} in time ({type(exc).__name__})"
        ) from None
    except (digitalocean.Error, IndexError, KeyError, ValueError) as exc:
        # Unreadable answers (the library raises IndexError on an error body without a
        # message), a missing token, or any other failure of the client library.
        log.warning("DigitalOcean failed %s: %r", action, exc)
        raise BadGateway(f"DigitalOcean gave an unusable answer to {action}") from None


def _machine(droplet: Any) -> Machine:
    region = droplet.region.get("name") if isinstance(droplet.region, dict) else str(droplet.region)
    return Machine(
        id=int(droplet.id),
        name=droplet.name,
        status=droplet.status,
        size_slug=droplet.size_slug,
        created_at=droplet.created_at,
        region=region,
        tags=list(droplet.tags or []),
    )


def stage_tag() -> str:
    return settings().droplet_tag


def list_machines() -> list[Machine]:
    """This stage's droplets (all pages)."""
    manager = _manager()
    tag = stage_tag()
    found = _call("listing droplets", lambda: manager.get_all_droplets(tag_name=tag))
    # The tag filter is DigitalOcean's; checking again costs nothing and keeps a
    # droplet that lost its tag from being counted or deleted as ours.
    return [_machine(d) for d in found if tag in (d.tags or [])]


def regions() -> list[dict[str, Any]]:
    manager = _manager()
    found = _call("listing regions", manager.get_all_regions)
    return [
        {"name": r.name, "slug": r.slug, "sizes": r.sizes, "available": r.available} for r in found
    ]


def sizes() -> list[dict[str, Any]]:
    manager = _manager()
    found = _call("listing sizes", manager.get_all_sizes)
    return [
        {
            "slug": s.slug,
            "available": s.available,
            "price_monthly": s.price_monthly,
            "price_hourly": s.price_hourly,
        }
        for s in found
    ]


def pricing() -> dict[str, Any]:
    prices = {s["slug"]: (float(s["price_hourly"]), float(s["price_monthly"])) for s in sizes()}
    machines = list_machines()
    hourly = sum(prices.get(m.size_slug, (0.0, 0.0))[0] for m in machines)
    monthly = sum(prices.get(m.size_slug, (0.0, 0.0))[1] for m in machines)
    return {
        "count": len(machines),
        "price_hourly": round(hourly, 6),
        "price_monthly": round(monthly, 2),
    }


def check_request(provider: str, region: str, size: str, count: int) -> None:
    """Refuse unknown providers, regions and sizes, naming what is allowed."""
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of: {', '.join(PROVIDERS)}")
    if not 1 <= count <= 10:
        raise InvalidInput("count must be 1 to 10")
    known = {r["slug"]: r for r in regions()}
    if region not in known or not known[region]["available"]:
        allowed = sorted(slug for slug, r in known.items() if r["available"])
        raise InvalidInput(f"region must be one of: {', '.join(allowed)}")
    allowed_sizes = [
        s["slug"] for s in sizes() if s["available"] and s["slug"] in known[region]["sizes"]
    ]
    if size not in allowed_sizes:
        raise InvalidInput(f"size must be one of (in {region}): {', '.join(sorted(allowed_sizes))}")


def create_machine(region: str, size: str, user_data: str) -> int:
    """One droplet of this stage; one at a time because each gets its own user data."""
    import digitalocean

    token = _manager().token  # the same checks: configured, timeout set

    def create() -> list[Any]:
        return digitalocean.Droplet.create_multiple(
            token=token,
            names=[WORKER_NAME],
            region=region,
            size_slug=size,
            image=IMAGE,
            tags=[TAG, stage_tag(), WORKER_NAME],
            monitoring=True,
            user_data=user_data,
        )

    (droplet,) = _call("creating a droplet", create)
    return int(droplet.id)


def check_ours(machine_id: int) -> None:
    """NotFound unless the droplet exists and carries this stage's tag."""
    manager = _manager()
    droplet = _call("reading the droplet", lambda: manager.get_droplet(machine_id))
    if stage_tag() not in (droplet.tags or []):
        raise NotFound(f"machine {machine_id} is not a machine of this stage ({stage_tag()})")


def delete_machine(machine_id: int) -> None:
    import digitalocean

    token = _manager().token
    droplet = digitalocean.Droplet(token=token, id=machine_id)
    _call("deleting the droplet", droplet.destroy)
