"""`openencoder encode`: upload local files, encode them with a preset, follow, download."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from openencoder_cli import context, output, watch
from openencoder_cli.client import Api, CliError
from openencoder_cli.outcome import conclude
from openencoder_cli.transfer import byte_bars, upload


def default_dest(path: Path, upload_id: str) -> str:
    """`encodes/<file stem>-<upload id>/`: new outputs never overwrite earlier ones."""
    stem = re.sub(r"[^\w.-]+", "-", path.stem).strip("-.") or "file"
    return f"encodes/{stem}-{upload_id}/"


def dest_for(path: Path, upload_id: str, dest: str | None, several: bool) -> str:
    if dest is None:
        return default_dest(path, upload_id)
    dest = dest if dest.endswith("/") else dest + "/"
    # One dest for several files would have their outputs overwrite each other.
    return dest + default_dest(path, upload_id).split("/", 1)[1] if several else dest


def labels_for(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def check_preset_exists(api: Api, preset: str) -> None:
    """A misspelt preset is found before gigabytes are uploaded, not after."""
    names = {p.get("name") for p in api.get("/presets").get("items") or []}
    if preset not in names:
        raise CliError(f"no preset named {preset!r}: `openencoder presets list` shows them")


def submit(api: Api, paths: list[Path], preset: str, dest: str | None) -> list[dict[str, Any]]:
    """Upload each file and create its job as soon as its bytes are in."""
    check_preset_exists(api, preset)
    jobs: list[dict[str, Any]] = []
    try:
        with byte_bars() as bars:
            for path in paths:
                done = upload(api, path, bars)
                body = {
                    "preset": preset,
                    "source": f"upload:{done['id']}",
                    "dest": dest_for(path, done["id"], dest, len(paths) > 1),
                }
                jobs.append(api.post("/jobs", body)["job"])
    except BaseException:
        # A later file failed (or Ctrl-C): say which jobs already exist and keep running.
        for job in jobs:
            output.err.print(f"job {job['id']} was created and keeps running: "
                             f"`openencoder jobs watch {job['id']}`")  # fmt: skip
        raise
    return jobs


def encode(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True, dir_okay=False, readable=True, metavar="FILE...", help="Local media files."
        ),
    ],
    preset: Annotated[
        str, typer.Option("--preset", "-p", help="Preset name (`openencoder presets list`).")
    ],
    dest: Annotated[
        str | None,
        typer.Option(
            help="Output prefix (s3://bucket/key/, s3:///key/ or key/); "
            "default encodes/<name>-<upload id>/. With several files, one folder each under it."
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the jobs until they end.")
    ] = True,
    download: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Download every file of the outputs (segments too) into this folder (waits).",
        ),
    ] = None,
    only: context.OnlyOption = None,
    links: context.LinksOption = False,
    json_output: context.JsonOption = False,
) -> None:
    """Encode local files: upload, encode with a preset, show progress, list the outputs.

    Exit code 0 when every job completed, 1 when one failed or was cancelled,
    2 for a usage or connection error.
    """
    api = context.api(ctx)
    as_json = context.wants_json(ctx, json_output)
    jobs = submit(api, files, preset, dest)
    labels = dict(zip([job["id"] for job in jobs], labels_for(files), strict=True))
    if not wait and download is None:
        if as_json:
            output.print_json(jobs)
        else:
            for job in jobs:
                output.out.print(f"{watch.name(job['id'], labels)}: {job['status']}")
            output.err.print("follow them with `openencoder jobs watch ID`")
        return
    finals, followed = watch.follow_or_cancel(api, jobs, labels)
    code = conclude(api, finals, labels, followed=followed, download_to=download,
                    only=only or (), links=links, as_json=as_json)  # fmt: skip
    raise typer.Exit(code)


EPILOG = context.example(
    "openencoder encode clip.mp4 --preset h264_baseline_360p_600",
    "openencoder encode a.mov b.mov -p h264_main_720p_3000 --download out/",
    "openencoder encode clip.mp4 -p h264_ladder_hls_dash --download out/ --only master.m3u8 "
    "--only 360p/ --only audio/",
    "openencoder encode talk.mp4 -p webm_vp9_720p_3000 --dest s3:///talks/2026/ --no-wait",
)
