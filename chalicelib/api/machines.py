"""Machine routes (DigitalOcean droplets): operators and admins only."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts.auth import Principal
from chalicelib.api.http import endpoint, parse_body, path_int
from chalicelib.api.schemas import MachineCreate
from chalicelib.fleet import digitalocean, droplet_pool


@endpoint(role="operator")
def create(request: Any, principal: Principal) -> Any:
    body = parse_body(request, MachineCreate)
    digitalocean.check_request(body.provider, body.region, body.size, body.count)
    ids = droplet_pool.launch_within_limits(body.region, body.size, body.count)
    return {"machine": [{"id": i, "provider": "digitalocean"} for i in ids]}


@endpoint(role="operator")
def list_all(request: Any, principal: Principal) -> Any:
    return {"machines": [m.view() for m in digitalocean.list_machines()]}


@endpoint(role="operator")
def delete(request: Any, machine_id: str, principal: Principal) -> Any:
    number = path_int(machine_id, "machine id")
    droplet_pool.remove(number)
    return {"machine": {"id": number, "provider": "digitalocean"}}


@endpoint(role="operator")
def delete_all(request: Any, principal: Principal) -> Any:
    droplet_pool.remove_all()
    return {"deleted": True}


@endpoint(role="operator")
def regions(request: Any, principal: Principal) -> Any:
    return {"regions": digitalocean.regions()}


@endpoint(role="operator")
def sizes(request: Any, principal: Principal) -> Any:
    return {"sizes": digitalocean.sizes()}


@endpoint(role="operator")
def pricing(request: Any, principal: Principal) -> Any:
    return {**digitalocean.pricing(), "status": 200}
