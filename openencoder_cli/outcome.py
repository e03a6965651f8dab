"""What finished jobs leave: outputs (shown, and downloaded on request) or failures.

Exit codes: 0 when every job completed, 1 when one failed or was cancelled (or was
left running after Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openencoder_cli import download, output, views
from openencoder_cli.client import Api
from openencoder_cli.watch import name


def save_outputs(api: Api, job: dict[str, Any], folder: Path, only: Sequence[str] = ()) -> None:
    """Download every object of a job's outputs (or of `only`) into `folder`, and say so."""
    saved = download.save(api, job, folder, only)
    output.err.print(saved.describe(folder))


def conclude(
    api: Api,
    finals: dict[int, dict[str, Any]],
    labels: dict[int, str],
    *,
    followed: bool,
    download_to: Path | None = None,
    only: Sequence[str] = (),
    links: bool = False,
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
            views.show_outputs(job.get("outputs") or [], links=links)
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
            save_outputs(api, job, folder, only)
    ok = followed and bool(jobs) and all(job.get("status") == "completed" for job in jobs)
    return 0 if ok else 1
