"""Starting and stopping this stage's worker droplets, for the routes and the reconcile alike.

Both respect the same limits (`OE_DROPLETS_MAX`, `OE_DROPLETS_HOURLY_BUDGET`) and take
the reconcile's lock while they change the pool, so a request and a scheduled run can
never both add droplets past the cap.
"""

from __future__ import annotations

import logging
import threading
import time

from chalicelib.errors import Conflict
from chalicelib.fleet import cloudinit, digitalocean, droplet_credentials, pool_lock
from chalicelib.jobs import runtime_settings

log = logging.getLogger("openencoder.droplets")
LOCK_WAIT_SECONDS = 5


def check_capacity(size: str, count: int) -> None:
    """Conflict (409) naming the numbers when `count` more droplets of `size` break a limit."""
    s = runtime_settings.effective()  # the admin's knobs (GET/PUT /api/settings)
    machines = digitalocean.list_machines()
    prices = {x["slug"]: float(x["price_hourly"]) for x in digitalocean.sizes()}
    running = len(machines)
    if running + count > s.droplet_max:
        raise Conflict(
            f"{running} droplets are running and the maximum is {s.droplet_max} "
            f"(OE_DROPLETS_MAX): {count} more would make {running + count}"
        )
    hourly_now = sum(prices.get(m.size_slug, 0.0) for m in machines)
    hourly_after = hourly_now + count * prices.get(size, 0.0)
    # A small tolerance: prices are decimals, sums of floats are not.
    if hourly_after > s.hourly_budget + 1e-9:
        raise Conflict(
            f"the pool costs ${hourly_now:.4f}/h and the budget is ${s.hourly_budget:.4f}/h "
            f"(OE_DROPLETS_HOURLY_BUDGET): {count} x {size} more would cost ${hourly_after:.4f}/h"
        )


def launch(region: str, size: str, count: int) -> list[int]:
    """Create `count` worker droplets, each with its own secret; returns their ids."""
    made = []
    for _ in range(count):
        secret = droplet_credentials.new_secret()
        droplet_id = digitalocean.create_machine(region, size, cloudinit.for_stage(secret))
        # Registered once DigitalOcean named the droplet; it boots for a minute or more
        # before it asks, and one that never gets its secret is replaced as silent.
        droplet_credentials.register(droplet_id, secret)
        made.append(droplet_id)
    return made


def launch_within_limits(region: str, size: str, count: int) -> list[int]:
    """What `POST /api/machines` does: check the limits and create, holding the pool's lock."""
    # A reconcile run holds the lock for a second or two: wait that long, not longer.
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    token = pool_lock.acquire(time.time())
    while token is None and time.monotonic() < deadline:
        threading.Event().wait(0.25)
        token = pool_lock.acquire(time.time())
    if token is None:
        raise Conflict(
            "the droplet pool is being changed by the reconcile: try again in a minute",
            headers={"Retry-After": "60"},
        )
    try:
        check_capacity(size, count)
        return launch(region, size, count)
    finally:
        pool_lock.release(token)


def remove(droplet_id: int) -> None:
    """Delete one of this stage's droplets (NotFound for any other droplet)."""
    digitalocean.check_ours(droplet_id)
    # Revoked first: a droplet whose deletion fails can renew nothing either.
    droplet_credentials.revoke(droplet_id)
    digitalocean.delete_machine(droplet_id)


def remove_all() -> list[int]:
    """Delete every droplet of this stage; returns their ids."""
    gone = []
    for machine in digitalocean.list_machines():
        droplet_credentials.revoke(machine.id)
        digitalocean.delete_machine(machine.id)
        gone.append(machine.id)
    return gone
