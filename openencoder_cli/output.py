"""What the CLI prints: the API's JSON for scripts, Rich tables for people.

Results go to stdout; progress, prompts and errors to stderr, so
`openencoder ... --json | jq` always reads clean JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


def print_json(document: Any) -> None:
    """The API's answer, unchanged."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    grid = Table(title=title, header_style="bold", title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")  # never cut a name or an id short
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    out.print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column `name  value` listing of one item."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in pairs:
        if value is not None and value != "":
            grid.add_row(name, str(value))
    out.print(grid)


def size(count: Any) -> str:
    if not isinstance(count, (int, float)):
        return ""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def bitrate(bits_per_second: Any) -> str:
    try:
        value = float(bits_per_second)
    except (TypeError, ValueError):
        return ""
    if value <= 0:
        return ""
    return f"{value / 1e6:.2f} Mb/s" if value >= 1e6 else f"{value / 1e3:.0f} kb/s"


def seconds(value: Any) -> str:
    return f"{float(value):.1f} s" if isinstance(value, (int, float)) else ""


def percent(value: Any) -> str:
    return f"{float(value):.0f}%" if isinstance(value, (int, float)) else ""
