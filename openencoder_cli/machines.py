"""`openencoder machines ...`: DigitalOcean droplets that run long encodes."""

from __future__ import annotations

from typing import Annotated

import typer

from openencoder_cli import context, output
from openencoder_cli.client import CliError
from openencoder_cli.context import JsonOption, example

app = typer.Typer(
    help="Machines: DigitalOcean droplets for long encodes (operator).",
    epilog=example(
        "openencoder machines list", "openencoder machines create --region nyc3 --size c-2"
    ),
    no_args_is_help=True,
)


@app.command("list", epilog=example("openencoder machines list"))
def list_machines(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the droplets tagged openencoder."""
    answer = context.api(ctx).get("/machines")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [(m.get("id"), m.get("name"), m.get("status"), m.get("region"), m.get("size_slug"),
             m.get("created_at")) for m in answer.get("machines") or []]  # fmt: skip
    output.table(["id", "name", "status", "region", "size", "created"], rows)


@app.command(epilog=example("openencoder machines create --region nyc3 --size c-2 --count 2"))
def create(
    ctx: typer.Context,
    region: Annotated[str, typer.Option(help="Region slug (`openencoder machines regions`).")],
    size: Annotated[str, typer.Option(help="Size slug (`openencoder machines sizes`).")],
    count: Annotated[int, typer.Option(min=1, max=10, help="How many droplets.")] = 1,
    json_output: JsonOption = False,
) -> None:
    """Start droplets (they carry the tag openencoder and run the worker)."""
    body = {"provider": "digitalocean", "region": region, "size": size, "count": count}
    answer = context.api(ctx).post("/machines", body)
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    for machine in answer.get("machine") or []:
        output.out.print(f"created machine {machine.get('id')}")


@app.command(
    epilog=example("openencoder machines delete 154372950", "openencoder machines delete --all")
)
def delete(
    ctx: typer.Context,
    machine: Annotated[int | None, typer.Argument(help="Droplet id.", metavar="ID")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Delete every droplet tagged openencoder.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --all.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete one droplet, or all of them with --all."""
    if (machine is None) == (not every):
        raise CliError("give a droplet ID or --all (not both)")
    if every and not yes:
        typer.confirm("Delete every droplet tagged openencoder?", abort=True, err=True)
    api = context.api(ctx)
    answer = api.delete("/machines") if every else api.delete(f"/machines/{machine}")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    else:
        output.out.print("deleted every machine" if every else f"deleted machine {machine}")


@app.command(epilog=example("openencoder machines regions"))
def regions(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """DigitalOcean's regions."""
    answer = context.api(ctx).get("/machines/regions")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [(r.get("slug"), r.get("name"), "yes" if r.get("available") else "no")
            for r in answer.get("regions") or []]  # fmt: skip
    output.table(["slug", "name", "available"], rows)


@app.command(epilog=example("openencoder machines sizes"))
def sizes(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """DigitalOcean's droplet sizes and prices."""
    answer = context.api(ctx).get("/machines/sizes")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [(s.get("slug"), s.get("price_hourly"), s.get("price_monthly"),
             "yes" if s.get("available") else "no") for s in answer.get("sizes") or []]  # fmt: skip
    output.table(["slug", "$/hour", "$/month", "available"], rows)


@app.command(epilog=example("openencoder machines pricing"))
def pricing(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """How many droplets run, and what they cost per hour and month."""
    answer = context.api(ctx).get("/machines/pricing")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    output.fields([("machines", answer.get("count")), ("$/hour", answer.get("price_hourly")),
                   ("$/month", answer.get("price_monthly"))])  # fmt: skip
