"""`openencoder webhooks ...`: endpoints told when jobs end (operator)."""

from __future__ import annotations

from typing import Annotated

import typer

from openencoder_cli import context, output
from openencoder_cli.context import JsonOption, example

app = typer.Typer(
    help="Webhooks: endpoints told when jobs end (operator).",
    epilog=example("openencoder webhooks list", "openencoder webhooks deliveries 3"),
    no_args_is_help=True,
)


@app.command("list", epilog=example("openencoder webhooks list"))
def list_webhooks(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List webhook endpoints."""
    answer = context.api(ctx).get("/webhooks")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [(w.get("id"), w.get("url"), ",".join(w.get("events") or []), w.get("format"),
             "yes" if w.get("active") else "no") for w in answer.get("items") or []]  # fmt: skip
    output.table(["id", "url", "events", "format", "active"], rows)


@app.command(epilog=example(
    "openencoder webhooks create --url https://example.com/hook --event job.failed",
    "openencoder webhooks create --url https://hooks.slack.com/services/... --format slack",
))  # fmt: skip
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="Where to POST events (https in a deployed stage).")],
    event: Annotated[
        list[str] | None,
        typer.Option(help="job.completed, job.failed, job.cancelled or job.progress (repeat)."),
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="standard or slack.")] = "standard",
    active: Annotated[bool, typer.Option("--active/--inactive")] = True,
    json_output: JsonOption = False,
) -> None:
    """Register an endpoint; its signing secret is shown once, now."""
    body = {"url": url, "events": event or ["job.completed", "job.failed", "job.cancelled"],
            "active": active, "format": format_}  # fmt: skip
    answer = context.api(ctx).post("/webhooks", body)
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    hook = answer.get("webhook") or {}
    output.out.print(f"created webhook {hook.get('id')} → {hook.get('url')}")
    if hook.get("secret"):
        output.out.print(f"signing secret (shown only now): {hook['secret']}")


@app.command(epilog=example("openencoder webhooks deliveries 3"))
def deliveries(
    ctx: typer.Context,
    webhook: Annotated[str, typer.Argument(help="Webhook id.", metavar="ID")],
    json_output: JsonOption = False,
) -> None:
    """Every delivery attempt to an endpoint: event, answer, latency, next try."""
    answer = context.api(ctx).get(f"/webhooks/{webhook}/deliveries")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [(d.get("created"), d.get("event"), d.get("status_code"), d.get("latency_ms"),
             d.get("attempt"), d.get("next_try")) for d in answer.get("items") or []]  # fmt: skip
    output.table(["when", "event", "answer", "ms", "attempt", "next try"], rows)


@app.command("test", epilog=example("openencoder webhooks test 3"))
def send_test(
    ctx: typer.Context,
    webhook: Annotated[str, typer.Argument(help="Webhook id.", metavar="ID")],
    json_output: JsonOption = False,
) -> None:
    """Queue a ping to an endpoint; `webhooks deliveries ID` shows how it answered."""
    answer = context.api(ctx).post(f"/webhooks/{webhook}/test")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    else:
        output.out.print(f"{answer.get('message', 'queued')} ({answer.get('id')})")
