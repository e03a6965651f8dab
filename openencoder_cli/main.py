"""`openencoder`: the command line of Open Encoder, over its public HTTP API."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from openencoder_cli import (
    config,
    context,
    encode,
    jobs,
    machines,
    output,
    presets,
    session,
    users,
    webhooks,
)
from openencoder_cli.client import Api, ApiError, CliError, error_of
from openencoder_cli.context import Invocation, JsonOption, example

app = typer.Typer(
    help="Open Encoder from the command line: encode local files, manage jobs and presets.",
    epilog=example(
        "openencoder login --api https://<stage url>/api",
        "openencoder encode clip.mp4 --preset h264_baseline_360p_600 --download out/",
        "openencoder jobs list --json",
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,  # errors are one line (see `run`), never a traceback
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(epilog=encode.EPILOG)(encode.encode)
app.add_typer(jobs.app, name="jobs")
app.add_typer(presets.app, name="presets")
app.add_typer(machines.app, name="machines")
app.add_typer(users.app, name="users")
app.add_typer(webhooks.app, name="webhooks")


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            output.out.print(f"openencoder {version('openencoder')}")
        except PackageNotFoundError:
            output.out.print("openencoder (not installed: run from a checkout)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    _version: Annotated[
        bool | None,
        typer.Option("--version", callback=show_version, is_eager=True, help="Print the version."),
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(help="API base URL, e.g. http://127.0.0.1:8000/api (default: OE_API, "
                     "your last login, or this checkout's `make run` stack)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:  # fmt: skip
    ctx.obj = Invocation(api_option=api, json=json_output)


@app.command(epilog=example(
    "openencoder login --api https://abc123.execute-api.us-east-1.amazonaws.com/prod/api",
    "openencoder login              # inside a checkout after `make run`: its admin",
    "OE_PASSWORD=... openencoder login -u ana@example.com",
))  # fmt: skip
def login(
    ctx: typer.Context,
    api: Annotated[str | None, typer.Option(help="API base URL to log in to.")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", envvar="OE_USERNAME")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="OE_PASSWORD", help="Asked for when not given.")
    ] = None,
) -> None:
    """Log in and keep the token in ~/.config/openencoder/ (mode 0600)."""
    base = session.api_base(api or context.invocation(ctx).api_option)
    stack = config.find_stack()
    admin = (stack or {}).get("admin") or {}
    if (
        username is None
        and password is None
        and stack
        and config.normalize_api(stack["api"]) == base
    ):
        username, password = admin.get("username"), admin.get("password")
    if not username:
        username = typer.prompt("Username", err=True)
    if not password:
        password = typer.prompt("Password", hide_input=True, err=True)
    saved = session.login(base, username, password)
    session.remember(base, saved, current=True)
    output.out.print(
        f"logged in to {base} as {username}; token valid until {saved.get('expire')}, "
        f"kept in {config.config_file()}"
    )
    try:
        me = Api(base, saved["token"]).get("/me").get("user") or {}
    except ApiError as exc:  # e.g. an admin asked for a new password first
        output.err.print(f"[yellow]{exc.api_message}[/]: `openencoder password` changes it")
    else:
        output.out.print(f"role: {me.get('role', '?')}")


@app.command(
    epilog=example("openencoder password", "OE_PASSWORD=a OE_NEW_PASSWORD=b openencoder password")
)
def password(
    ctx: typer.Context,
    current: Annotated[str | None, typer.Option(envvar="OE_PASSWORD", hidden=True)] = None,
    new: Annotated[str | None, typer.Option(envvar="OE_NEW_PASSWORD", hidden=True)] = None,
) -> None:
    """Change your password (asked for, never echoed); the new token is kept."""
    api = context.api(ctx)
    if current is None:
        current = typer.prompt("Current password", hide_input=True, err=True)
    if new is None:
        new = typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    answer = api.post("/update-password", {"current_password": current, "new_password": new})
    if answer.get("token") and not os.environ.get("OE_TOKEN"):
        saved = config.load()["sessions"].get(api.base) or {}
        session.remember(api.base, {**saved, "token": answer["token"],
                                    "expire": answer.get("expire")}, current=False)  # fmt: skip
    output.out.print(answer.get("message", "password changed"))


@app.command(epilog=example("openencoder logout"))
def logout(
    ctx: typer.Context, api: Annotated[str | None, typer.Option(help="API to log out of.")] = None
) -> None:
    """Forget the saved token of an API."""
    base = session.api_base(api or context.invocation(ctx).api_option)
    found = session.forget(base)
    output.out.print(f"logged out of {base}" if found else f"no saved login for {base}")


@app.command(epilog=example("openencoder stats", "openencoder stats --json"))
def stats(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Job counts by status."""
    answer = context.api(ctx).get("/stats")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    counts = answer.get("jobs") or {}
    output.table(["status", "jobs"], [(k, v) for k, v in counts.items() if k != "total"]
                 + [("total", counts.get("total", ""))])  # fmt: skip


@app.command(
    epilog=example("openencoder health", "openencoder --api https://<stage url>/api health")
)
def health(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Is the API up, and can it reach its tables, queues and buckets? (exit 1 if degraded)"""
    api = context.api(ctx, need_token=False)
    response = api.raw("GET", "/health")
    if response.status_code not in (200, 503):
        raise error_of(response)
    answer = response.json()
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    else:
        style = "green" if response.status_code == 200 else "red"
        output.out.print(f"[{style}]{answer.get('message')}[/] ({api.base})")
        # {"tables": {"<name>": "ok", ...}, "queues": {...}, "buckets": {...}}
        rows = [
            (kind, name, state)
            for kind, group in (answer.get("checks") or {}).items()
            for name, state in (group.items() if isinstance(group, dict) else [("", group)])
        ]
        if rows:
            output.table(["kind", "name", "state"], rows)
    raise typer.Exit(0 if response.status_code == 200 else 1)


def run() -> None:
    """The console script: API and connection errors as one line with an exit code."""
    try:
        app(prog_name="openencoder")
    except CliError as exc:
        output.error_line(exc.message)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the user sees one line, not a traceback
        if os.environ.get("OE_DEBUG"):
            raise
        output.error_line(f"unexpected {type(exc).__name__}: {exc} (OE_DEBUG=1 shows where)")
        sys.exit(2)
