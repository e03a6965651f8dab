"""What every command shares: the chosen API, JSON mode, option types, examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import typer

from openencoder_cli import session
from openencoder_cli.client import Api


@dataclass
class Invocation:
    """The root options (`openencoder --api URL --json ...`), and the API client made once."""

    api_option: str | None = None
    json: bool = False
    _clients: dict[bool, Api] = field(default_factory=dict)

    def api(self, *, need_token: bool = True) -> Api:
        if need_token not in self._clients:
            self._clients[need_token] = session.connect(self.api_option, need_token=need_token)
        return self._clients[need_token]


def invocation(ctx: typer.Context) -> Invocation:
    root = ctx.find_root()
    if not isinstance(root.obj, Invocation):
        root.obj = Invocation()
    return root.obj


def api(ctx: typer.Context, *, need_token: bool = True) -> Api:
    return invocation(ctx).api(need_token=need_token)


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    return flag or invocation(ctx).json


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON answer unchanged (for scripts).")
]

LinksOption = Annotated[
    bool, typer.Option("--links", help="Also print each output's download link (presigned).")
]
OnlyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        metavar="NAME",
        help="With --download: only this output (its name in the outputs table, e.g. "
        "master.m3u8 or 360p/). Repeat for more.",
    ),
]


def example(*lines: str) -> str:
    """A command's help epilog: one example per line."""
    return "\n\n".join(["[bold]Examples[/bold]", *(f"  $ {line}" for line in lines)])
