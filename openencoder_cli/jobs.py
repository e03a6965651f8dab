"""`openencoder jobs ...`: list, show, watch, cancel, restart, outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openencoder_cli import context, output, views, watch
from openencoder_cli.context import JsonOption, LinksOption, OnlyOption, example
from openencoder_cli.outcome import conclude, save_outputs

app = typer.Typer(
    help="Encode jobs: list, show, follow, cancel, restart, outputs.",
    epilog=example("openencoder jobs list", "openencoder jobs watch 12 --download out/"),
    no_args_is_help=True,
)
JobRef = Annotated[str, typer.Argument(help="Job id (number) or guid.", metavar="JOB")]


LIST_EXAMPLES = example(
    "openencoder jobs list",
    "openencoder jobs list --count 50 --page 2",
    "openencoder jobs list --json | jq '.items[].status'",
)


@app.command("list", epilog=LIST_EXAMPLES)
def list_jobs(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    page: Annotated[int | None, typer.Option(min=1, help="Page number.")] = None,
    cursor: Annotated[str | None, typer.Option(help="Cursor from a previous page.")] = None,
    json_output: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    params: dict[str, str | int] = {"count": count}
    if page:
        params["page"] = page
    if cursor:
        params["cursor"] = cursor
    answer = context.api(ctx).get("/jobs", params=params)
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [
        (
            j.get("id"),
            j.get("status"),
            output.percent(j.get("progress")),
            j.get("preset"),
            j.get("created_date"),
            j.get("guid"),
        )
        for j in answer.get("items") or []
    ]
    output.table(["id", "status", "progress", "preset", "created", "guid"], rows,
                 title=f"{answer.get('count', len(rows))} jobs")  # fmt: skip
    if answer.get("next"):
        output.err.print(f"more: openencoder jobs list --count {count} --cursor {answer['next']}")


@app.command(epilog=example("openencoder jobs show 12", "openencoder jobs show 12 --json"))
def show(
    ctx: typer.Context, job: JobRef, links: LinksOption = False, json_output: JsonOption = False
) -> None:
    """Show one job: status, progress, plan, source media, outputs, error."""
    answer = context.api(ctx).get(f"/jobs/{job}")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    views.show_job(answer, links=links)


@app.command(
    "watch",
    epilog=example("openencoder jobs watch 12", "openencoder jobs watch 12 13 --download out/"),
)
def watch_jobs(
    ctx: typer.Context,
    jobs: Annotated[list[str], typer.Argument(help="Job ids or guids.", metavar="JOB...")],
    download: Annotated[
        Path | None, typer.Option(file_okay=False, help="Download the outputs into this folder.")
    ] = None,
    only: OnlyOption = None,
    links: LinksOption = False,
    json_output: JsonOption = False,
) -> None:
    """Follow jobs with a live progress bar each until they end (exit 0 when all completed)."""
    api = context.api(ctx)
    views_now = [api.get(f"/jobs/{ref}") for ref in jobs]
    finals, followed = watch.follow_or_cancel(api, views_now, {})
    raise typer.Exit(conclude(api, finals, {}, followed=followed, download_to=download,
                              only=only or (), links=links,
                              as_json=context.wants_json(ctx, json_output)))  # fmt: skip


@app.command(epilog=example("openencoder jobs cancel 12"))
def cancel(ctx: typer.Context, job: JobRef, json_output: JsonOption = False) -> None:
    """Cancel an unfinished job (ffmpeg is stopped within seconds)."""
    answer = context.api(ctx).post(f"/jobs/{job}/cancel")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    else:
        output.out.print(f"job {job}: {answer.get('job_status')}")


@app.command(epilog=example("openencoder jobs restart 12", "openencoder jobs restart 12 --watch"))
def restart(
    ctx: typer.Context,
    job: JobRef,
    follow: Annotated[bool, typer.Option("--watch", help="Follow the new attempt.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Run a finished (completed, failed or cancelled) job again as its next attempt."""
    api = context.api(ctx)
    answer = api.post(f"/jobs/{job}/restart")
    as_json = context.wants_json(ctx, json_output)
    if not follow:
        if as_json:
            output.print_json(answer)
        else:
            output.out.print(
                f"job {job}: {answer.get('job_status')} (attempt {answer.get('attempt')})"
            )
        return
    view = api.get(f"/jobs/{job}")
    finals, followed = watch.follow_or_cancel(api, [view], {})
    raise typer.Exit(conclude(api, finals, {}, followed=followed, as_json=as_json))


@app.command(
    epilog=example(
        "openencoder jobs outputs 12",
        "openencoder jobs outputs 12 --links",
        "openencoder jobs outputs 12 --download out/",
        "openencoder jobs outputs 12 --download out/ --only master.m3u8 --only 360p/",
    )
)
def outputs(
    ctx: typer.Context,
    job: JobRef,
    download: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Download every file of the outputs (segments too) into this folder; "
            "files already there are skipped, so an interrupted download resumes.",
        ),
    ] = None,
    only: OnlyOption = None,
    links: LinksOption = False,
    json_output: JsonOption = False,
) -> None:
    """A job's outputs: name, kind, resolution, bitrate, size, duration (or download them)."""
    api = context.api(ctx)
    answer = api.get(f"/jobs/{job}/outputs")
    if download is not None:
        save_outputs(api, api.get(f"/jobs/{job}"), download, only or ())
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
    elif download is None or links:
        views.show_outputs(answer.get("items") or [], links=links)


@app.command(epilog=example("openencoder jobs tasks 12", "openencoder jobs tasks 12 --json"))
def tasks(ctx: typer.Context, job: JobRef, json_output: JsonOption = False) -> None:
    """The tasks of a job's plan (each chunk of each rendition, audio, assemble)."""
    answer = context.api(ctx).get(f"/jobs/{job}/tasks")
    if context.wants_json(ctx, json_output):
        output.print_json(answer)
        return
    rows = [
        (t.get("id"), t.get("kind"), t.get("chunk"),
         t.get("rendition") or " + ".join(t.get("renditions") or []), t.get("status"),
         output.percent(t.get("progress")), t.get("attempt"), t.get("started"), t.get("finished"))
        for t in answer.get("items") or []
    ]  # fmt: skip
    output.table(["task", "kind", "chunk", "rendition", "status", "progress", "attempt",
                  "started", "finished"], rows)  # fmt: skip
