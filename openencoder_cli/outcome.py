"""What finished jobs leave: outputs (shown, and downloaded on request) or failures.

Exit codes: 0 when every job completed, 1 when one failed or was cancelled (or was
left running after Ctrl-C).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from openencoder_cli import output, views
from openencoder_cli.client import Api
from openencoder_cli.transfer import byte_bars, download
from openencoder_cli.watch import name


def relative_name(key: str, dest: str | None) -> PurePosixPath:
    """An output's path under its job's dest (`hls/720p/seg1.m4s`), safe to join to a folder."""
    prefix = (dest or "").split("://", 1)[-1]
    if "://" in (dest or ""):
        prefix = prefix.split("/", 1)[1] if "/" in prefix else ""  # drop the bucket
    name = key[len(prefix) :] if prefix and key.startswith(prefix) else key.rsplit("/", 1)[-1]
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".", "..", "/")]
    return PurePosixPath(*parts) if parts else PurePosixPath(key.rsplit("/", 1)[-1] or "output")


def save_outputs(api: Api, job: dict[str, Any], folder: Path) -> list[Path]:
    """Download every output of a completed job into `folder`, with fresh links."""
    items = api.get(f"/jobs/{job['id']}/outputs").get("items") or []
    saved = []
    with byte_bars() as bars:
        for item in items:
            if not item.get("url"):
                continue
            name = relative_name(item["key"], job.get("dest"))
            saved.append(download(item["url"], folder / name, bars, str(name)))
    return saved


def conclude(
    api: Api,
    finals: dict[int, dict[str, Any]],
    labels: dict[int, str],
    *,
    followed: bool,
    download_to: Path | None = None,
    as_json: bool = False,
) -> int:
    """Report each job's end (and download its outputs); the process's exit code."""
    jobs = list(finals.values())
    if as_json:
        output.print_json(jobs)
    for job in jobs:
        if as_json:
            if job.get("status") != "completed":
                views.show_failure(job)  # stderr: the JSON on stdout stays clean
            continue
        if job.get("status") == "completed":
            output.out.print(f"[green]✓[/] {name(job['id'], labels)} completed")
            views.show_outputs(job.get("outputs") or [])
        else:
            views.show_failure(job)
    if download_to is not None:
        stems = [Path(labels.get(job["id"]) or f"job-{job['id']}").stem for job in jobs]
        for job, stem in zip(jobs, stems, strict=True):
            if job.get("status") != "completed":
                continue
            # Several jobs: a folder each, named after the source (and the job if names clash).
            folder = download_to
            if len(jobs) > 1:
                folder = download_to / (stem if stems.count(stem) == 1 else f"{stem}-{job['id']}")
            for path in save_outputs(api, job, folder):
                output.err.print(f"saved {path}")
    ok = followed and bool(jobs) and all(job.get("status") == "completed" for job in jobs)
    return 0 if ok else 1
