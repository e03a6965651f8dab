"""Following jobs until they end: one live progress bar per job, Ctrl-C offers to cancel."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.prompt import Confirm

from openencoder_cli import output
from openencoder_cli.client import Api, ApiError, Unreachable
from openencoder_cli.views import TERMINAL

POLL_SECONDS = 1.0
# A watch outlives blips (a restarting API, a dropped connection): it keeps polling
# through failures for this long before giving up.
OUTAGE_SECONDS = 60.0
_PHASE_STYLE = {"completed": "green", "error": "red", "cancelled": "yellow", "retrying": "dim"}


def job_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[phase]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[chunks]}"),
        TimeElapsedColumn(),
        console=output.err,
        refresh_per_second=8,
    )


def chunk_counts(tasks: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(chunks done, chunks): a chunk is done when each of its renditions is encoded."""
    chunks: dict[Any, bool] = {}
    for task in tasks:
        if task.get("chunk") is None or task.get("kind", "encode") != "encode":
            continue
        finished = task.get("status") in ("done", "completed")
        chunks[task["chunk"]] = chunks.get(task["chunk"], True) and finished
    return (sum(chunks.values()), len(chunks)) if chunks else None


class ChunkCounter:
    """'chunks done/total' of a chunked job, from its tasks (or its plan's counts)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.tasks_route = True

    def text(self, job: dict[str, Any]) -> str:
        plan = job.get("plan")
        if not isinstance(plan, dict) or plan.get("mode") != "chunked":
            return ""
        if self.tasks_route and job.get("status") not in TERMINAL:
            try:
                tasks = self.api.get(f"/jobs/{job['id']}/tasks").get("items") or []
            except ApiError:
                self.tasks_route = False  # a server without the route: use the plan's counts
            except Unreachable:
                pass  # a blip: the plan's counts this time
            else:
                counted = chunk_counts(tasks)
                if counted is not None:
                    return f"chunks {counted[0]}/{counted[1]}"
        if plan.get("tasks_total"):
            return f"tasks {plan.get('tasks_done', 0)}/{plan['tasks_total']}"
        return f"{plan.get('chunks', '?')} chunks"


class Poller:
    """GET a job's view; transient failures answer None until they last too long."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.failing_since: float | None = None

    def view(self, job_id: int) -> dict[str, Any] | None:
        try:
            view = self.api.get(f"/jobs/{job_id}")
        except (Unreachable, ApiError) as exc:
            transient = isinstance(exc, Unreachable) or exc.status in (429, 502, 503, 504)
            now = time.monotonic()
            self.failing_since = self.failing_since or now
            if not transient or now - self.failing_since > OUTAGE_SECONDS:
                raise
            return None
        self.failing_since = None
        return view


def _rate(job: dict[str, Any]) -> str:
    bits = []
    if job.get("fps"):
        bits.append(f"{float(job['fps']):.0f} fps")
    if job.get("speed"):
        bits.append(str(job["speed"]))
    return " ".join(bits)


def name(job_id: int, labels: dict[int, str]) -> str:
    """`job 12`, with the file it encodes when known: `job 12 clip.mp4`."""
    return f"job {job_id} {labels[job_id]}" if labels.get(job_id) else f"job {job_id}"


def _phase(status: str) -> str:
    style = _PHASE_STYLE.get(status, "cyan")
    return f"[{style}]{status:<11}[/]"


def follow(
    api: Api, jobs: list[dict[str, Any]], labels: dict[int, str], finals: dict[int, dict]
) -> dict[int, dict]:
    """Poll every job until it ends; `finals` collects each job's last view as it ends."""
    chunks, poller = ChunkCounter(api), Poller(api)
    if not output.err.is_terminal:
        return _follow_plainly(poller, jobs, labels, finals)
    with job_bars() as bars:
        ids: dict[int, TaskID] = {
            job["id"]: bars.add_task(
                name(job["id"], labels), total=100, phase=_phase(job["status"]), rate="", chunks=""
            )
            for job in jobs
        }
        while len(finals) < len(jobs):
            for job_id, task in ids.items():
                if job_id in finals:
                    continue
                view = poller.view(job_id)
                if view is None:
                    bars.update(task, phase=_phase("retrying"))
                    continue
                status = view.get("status", "?")
                done = 100.0 if status == "completed" else float(view.get("progress") or 0)
                bars.update(task, completed=done, phase=_phase(status), rate=_rate(view),
                            chunks=chunks.text(view))  # fmt: skip
                if status in TERMINAL:
                    finals[job_id] = view
            if len(finals) < len(jobs):
                time.sleep(POLL_SECONDS)
    return finals


def _follow_plainly(
    poller: Poller, jobs: list[dict[str, Any]], labels: dict[int, str], finals: dict[int, dict]
) -> dict[int, dict]:
    """Not a terminal (a log, a pipe): one line whenever a job's status changes."""
    seen: dict[int, str] = {}
    while len(finals) < len(jobs):
        for job in jobs:
            if job["id"] in finals:
                continue
            view = poller.view(job["id"])
            if view is None:
                continue
            status = view.get("status", "?")
            if seen.get(job["id"]) != status:
                seen[job["id"]] = status
                output.err.print(
                    f"{name(job['id'], labels)}: {status} {output.percent(view.get('progress'))}"
                )
            if status in TERMINAL:
                finals[job["id"]] = view
        if len(finals) < len(jobs):
            time.sleep(POLL_SECONDS)
    return finals


def follow_or_cancel(
    api: Api, jobs: list[dict[str, Any]], labels: dict[int, str]
) -> tuple[dict[int, dict], bool]:
    """Follow the jobs; on Ctrl-C ask whether to cancel the unfinished ones.

    Returns the last views of the jobs and whether every job was followed to its end.
    """
    finals: dict[int, dict] = {}
    try:
        return follow(api, jobs, labels, finals), True
    except KeyboardInterrupt:
        pass
    running = [job["id"] for job in jobs if job["id"] not in finals]
    output.err.print()
    try:
        cancel = Confirm.ask(
            f"Cancel {len(running)} unfinished job(s) ({', '.join(map(str, running))})?",
            console=output.err,
            default=False,
        )
    except (EOFError, KeyboardInterrupt):
        cancel = False
    if not cancel:
        for job_id in running:
            output.err.print(f"job {job_id} keeps running: `openencoder jobs watch {job_id}`")
        return finals, False
    for job_id in running:
        try:
            api.post(f"/jobs/{job_id}/cancel")
        except ApiError as exc:  # it may have ended meanwhile (409 says how)
            output.err.print(f"job {job_id}: {exc.api_message}")
        finals[job_id] = api.get(f"/jobs/{job_id}")
    return finals, True
