"""`openencoder users ...`: accounts and roles (admin)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from openencoder_cli import context, output
from openencoder_cli.context import JsonOption, example

app = typer.Typer(
    help="Users: roles and access (admin).",
    epilog=example("openencoder users list", "openencoder users set-role ana@example.com operator"),
    no_args_is_help=True,
)


class Role(StrEnum):
    guest = "guest"
    operator = "operator"
    admin = "admin"


User = Annotated[str, typer.Argument(help="Username.", metavar="USER")]


@app.command("list", epilog=example("openencoder users list"))
def list_users(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List users and their roles."""
    answer = context.api(ctx).get("/users")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [(u.get("username"), u.get("role"), "yes" if u.get("active") else "no",
             u.get("created_date")) for u in answer.get("items") or []]  # fmt: skip
    output.table(["username", "role", "active", "created"], rows)


def _change(ctx: typer.Context, user: str, body: dict, json_output: bool) -> None:
    answer = context.api(ctx).put(f"/users/{user}", body)
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    item = answer.get("user") or {}
    state = "active" if item.get("active") else "deactivated"
    output.out.print(f"{item.get('username', user)}: {item.get('role')}, {state}")


@app.command("set-role", epilog=example("openencoder users set-role ana@example.com operator"))
def set_role(
    ctx: typer.Context,
    user: User,
    role: Annotated[Role, typer.Argument(help="guest, operator or admin.")],
    json_output: JsonOption = False,
) -> None:
    """Give a user a role (it applies to tokens already issued)."""
    _change(ctx, user, {"role": role.value}, json_output)


@app.command(epilog=example("openencoder users deactivate ana@example.com"))
def deactivate(ctx: typer.Context, user: User, json_output: JsonOption = False) -> None:
    """Stop a user from logging in or calling the API."""
    _change(ctx, user, {"active": False}, json_output)


@app.command(epilog=example("openencoder users activate ana@example.com"))
def activate(ctx: typer.Context, user: User, json_output: JsonOption = False) -> None:
    """Let a deactivated user back in."""
    _change(ctx, user, {"active": True}, json_output)


@app.command("force-reset", epilog=example("openencoder users force-reset ana@example.com"))
def force_reset(ctx: typer.Context, user: User, json_output: JsonOption = False) -> None:
    """Make a user choose a new password before anything else works."""
    _change(ctx, user, {"force_password_reset": True}, json_output)
