"""How a job, its outputs and its failure are shown to people."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel
from rich.text import Text

from openencoder_cli import output

TERMINAL = frozenset({"completed", "error", "cancelled"})


def plan_summary(job: dict[str, Any]) -> str:
    plan = job.get("plan")
    if not isinstance(plan, dict):
        return ""
    text = str(plan.get("mode") or "")
    if plan.get("mode") == "chunked":
        text += f", {plan.get('chunks', '?')} chunks"
    if plan.get("tasks_total"):
        text += f", tasks {plan.get('tasks_done', 0)}/{plan['tasks_total']}"
    return text


def cost_summary(job: dict[str, Any]) -> str:
    """'estimate $0.0123, actual $0.0098 (612.5 GB-s, 41 requests)': what the plan
    expected and what the runs so far were billed (a server without costs: the estimate)."""
    plan = job.get("plan") if isinstance(job.get("plan"), dict) else {}
    cost = job.get("cost") if isinstance(job.get("cost"), dict) else {}
    usd = (cost.get("estimate") or {}).get("usd")
    if usd is None:
        usd = ((plan or {}).get("estimate") or {}).get("cost_usd")
    parts = [f"estimate ${float(usd):.4f}"] if usd is not None else []
    actual = cost.get("actual") or {}
    if actual.get("requests"):
        parts.append(
            f"actual ${float(actual.get('usd') or 0):.4f} "
            f"({float(actual.get('gb_seconds') or 0):,.1f} GB-s, {actual['requests']} requests)"
        )
    return ", ".join(parts)


def resolution(item: dict[str, Any]) -> str:
    width, height = item.get("width"), item.get("height")
    return f"{width}x{height}" if width and height else ""


def show_job(job: dict[str, Any], *, links: bool = False) -> None:
    probe = job.get("probe") or {}
    output.fields(
        [
            ("job", f"{job.get('id')}  ({job.get('guid')})"),
            ("status", job.get("status")),
            ("progress", output.percent(job.get("progress"))),
            ("preset", job.get("preset")),
            ("source", job.get("source")),
            ("dest", job.get("dest")),
            ("owner", job.get("owner")),
            ("attempt", job.get("attempt")),
            ("fps / speed", _speed(job)),
            ("plan", plan_summary(job)),
            ("cost", cost_summary(job)),
            ("source media", _probe(probe)),
            ("created", job.get("created_date")),
            ("updated", job.get("updated_date")),
        ]
    )
    if job.get("outputs"):
        show_outputs(job["outputs"], links=links)
    if job.get("error"):
        show_failure(job)


def _speed(job: dict[str, Any]) -> str:
    parts = []
    if job.get("fps"):
        parts.append(f"{job['fps']:.0f} fps")
    if job.get("speed"):
        parts.append(str(job["speed"]))
    return ", ".join(parts)


def _probe(probe: dict[str, Any]) -> str:
    if not probe:
        return ""
    bits = [str(probe["container"])] if probe.get("container") else []
    for stream in probe.get("streams") or []:
        bits.append(" ".join(filter(None, [str(stream.get("codec") or ""), resolution(stream)])))
    if probe.get("duration"):
        bits.append(output.seconds(probe["duration"]))
    return ", ".join(b for b in bits if b)


def output_row(item: dict[str, Any]) -> tuple[str, ...]:
    """name, kind, resolution, bitrate, size, duration: one output as the table shows it."""
    kind = str(item.get("kind") or "")
    if item.get("count") is not None and not item.get("uri"):
        kind += f" ({item['count']})"  # a folder: its segments or numbered pictures
    return (
        str(item.get("name") or item.get("key") or ""),
        kind,
        resolution(item) or str(item.get("rendition") or ""),
        output.bitrate(item.get("bit_rate")),
        output.size(item.get("size")),
        output.seconds(item.get("duration")),
    )


def quality_cell(item: dict[str, Any]) -> str:
    """A rendition's measured quality: VMAF mean and 5th percentile, PSNR, SSIM; or why not."""
    measured = item.get("quality")
    if not measured:
        return ""
    if measured.get("status") != "ok":
        return f"failed: {measured.get('reason') or 'no reason given'}"
    parts = []
    if vmaf := measured.get("vmaf"):
        parts.append(f"VMAF {vmaf['mean']:.1f} (p5 {vmaf['p5']:.1f})")
    if psnr := measured.get("psnr"):
        parts.append(f"PSNR {psnr['mean']:.1f} dB")
    if ssim := measured.get("ssim"):
        parts.append(f"SSIM {ssim['mean']:.4f}")
    return ", ".join(parts)


def show_outputs(items: list[dict[str, Any]], *, links: bool = False) -> None:
    """One row per output, by name; with `links`, each output's (presigned) link after it.

    A job that measured quality gets a quality column (a job that did not, the table as it was).
    """
    items = sorted(items, key=lambda item: str(item.get("name") or item.get("key") or ""))
    columns = ["name", "kind", "resolution", "bitrate", "size", "duration"]
    rows = [output_row(item) for item in items]
    if any(item.get("quality") for item in items):
        columns.append("quality")
        rows = [(*row, quality_cell(item)) for row, item in zip(rows, items, strict=True)]
    output.table(columns, rows, title=f"{len(items)} outputs")
    if not links:
        return
    for item in items:
        if item.get("url"):
            name = str(item.get("name") or item.get("key"))
            output.out.print(Text.assemble((name, "cyan"), f"  (until {item.get('url_expires')})"))
            output.out.print(Text(f"  {item['url']}"), soft_wrap=True)


def show_failure(job: dict[str, Any]) -> None:
    """The job's error message and the tail of ffmpeg's log, on stderr."""
    error = job.get("error") or {}
    status = job.get("status")
    if status == "cancelled" and not error:
        output.err.print(f"job {job.get('id')} was cancelled", style="yellow")
        return
    message = error.get("message") or f"the job ended {status}"
    output.err.print(Text.assemble(("job ", "red"), (str(job.get("id")), "red bold"),
                                   (" failed: ", "red"), message))  # fmt: skip
    tail = (error.get("log") or "").strip()
    if tail:
        output.err.print(Panel(Text(tail), title="ffmpeg log (last lines)", title_align="left",
                               border_style="dim", expand=False))  # fmt: skip
