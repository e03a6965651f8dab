"""`openencoder presets ...`: list, show, create, update, validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from openencoder_cli import context, output
from openencoder_cli.client import Api, CliError
from openencoder_cli.context import JsonOption, example

app = typer.Typer(
    help="Presets: named ffmpeg recipes.",
    epilog=example("openencoder presets list", "openencoder presets validate --file mine.json"),
    no_args_is_help=True,
)

PresetFile = Annotated[
    Path,
    typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True,
                 help='JSON: {"name", "description", "data", "output", "active"}; '
                 '"data" may be an object or the API\'s JSON string.'),
]  # fmt: skip
PresetRef = Annotated[str, typer.Argument(help="Preset id or name.", metavar="PRESET")]

FILE_EXAMPLE = """{"name": "h264_540p_crf", "description": "CRF 22 at 540p", "output": "video.mp4",
 "data": {"raw": ["-vf scale=-2:540", "-c:v libx264", "-crf 22", "-c:a aac", "-y"]}}"""


def read_body(path: Path) -> dict[str, Any] | str:
    """The file as the API's body. A file that is not a JSON object is sent as it is,
    so the server's own 400 says what is wrong with it (nothing is judged here)."""
    text = path.read_text()
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict) and isinstance(body.get("data"), (dict, list)):
        body = {**body, "data": json.dumps(body["data"])}  # the API takes data as a string
    return body if isinstance(body, dict) else text


def send(api: Api, method: str, path: str, body: dict[str, Any] | str) -> Any:
    if isinstance(body, str):
        return api.call(method, path, data=body.encode(),
                        headers={"Content-Type": "application/json"})  # fmt: skip
    return api.call(method, path, body)


def preset_id(api: Api, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    for item in api.get("/presets").get("items") or []:
        if item.get("name") == ref:
            return int(item["id"])
    raise CliError(f"no preset named {ref!r}: `openencoder presets list` shows them")


@app.command("list", epilog=example("openencoder presets list", "openencoder presets list --json"))
def list_presets(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List presets."""
    answer = context.api(ctx).get("/presets")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [
        (
            p.get("id"),
            p.get("name"),
            p.get("output"),
            "yes" if p.get("active") else "no",
            p.get("description"),
        )
        for p in answer.get("items") or []
    ]
    output.table(["id", "name", "output", "active", "description"], rows)


@app.command(
    epilog=example(
        "openencoder presets show h264_baseline_360p_600", "openencoder presets show 1 --json"
    )
)
def show(ctx: typer.Context, preset: PresetRef, json_output: JsonOption = False) -> None:
    """Show a preset, its ffmpeg options included."""
    api = context.api(ctx)
    answer = api.get(f"/presets/{preset_id(api, preset)}")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    item = answer.get("preset") or {}
    output.fields([(k, item.get(k)) for k in ("id", "name", "description", "output", "active")])
    try:
        output.out.print_json(item.get("data") or "{}")
    except ValueError:
        output.out.print(item.get("data"))


@app.command(epilog=example("openencoder presets create --file h264_540p.json")
             + "\n\n[bold]File[/bold]\n\n" + FILE_EXAMPLE.replace("\n", " "))  # fmt: skip
def create(ctx: typer.Context, file: PresetFile, json_output: JsonOption = False) -> None:
    """Create a preset from a JSON file (the server validates it; a 400 says what to fix)."""
    answer = send(context.api(ctx), "POST", "/presets", read_body(file))
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    else:
        item = answer.get("preset") or answer
        output.out.print(f"created preset {item.get('id')} {item.get('name')}")


@app.command(epilog=example("openencoder presets update 6 --file changes.json",
                            "openencoder presets update h264_540p_crf --inactive"))  # fmt: skip
def update(
    ctx: typer.Context,
    preset: PresetRef,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", exists=True, dir_okay=False, help="JSON with the fields to change."
        ),
    ] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Offer it or not.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Change a preset: fields from a file and/or the options."""
    body: dict[str, Any] | str = read_body(file) if file else {}
    flags = {k: v for k, v in (("active", active), ("description", description)) if v is not None}
    if isinstance(body, dict):
        body.update(flags)
        if not body:
            raise CliError("nothing to change: give --file, --active/--inactive or --description")
    api = context.api(ctx)
    answer = send(api, "PUT", f"/presets/{preset_id(api, preset)}", body)
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    else:
        item = answer.get("preset") or answer
        output.out.print(f"updated preset {item.get('id')} {item.get('name')}")


@app.command(epilog=example("openencoder presets validate --file h264_540p.json"))
def validate(ctx: typer.Context, file: PresetFile, json_output: JsonOption = False) -> None:
    """Ask the server whether a preset file is valid, without saving it (exit 1 if not)."""
    answer = send(context.api(ctx), "POST", "/presets/validate", read_body(file))
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    item = answer.get("preset") or {}
    output.out.print(
        f"[green]{answer.get('message', 'valid')}[/]: {item.get('name')} → {item.get('output')}"
    )
    if answer.get("args"):
        output.out.print("ffmpeg options: " + " ".join(answer["args"]), soft_wrap=True)
