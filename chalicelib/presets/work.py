"""What a preset asks of the planner: renditions, cost and whether it can be cut into chunks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Work:
    """What the preset asks for, as far as planning cares (built by chalicelib.presets.recipe)."""

    renditions: tuple[str, ...]  # names: "720p", ... or the single output's name
    cost: float  # CPU seconds per source second on one vCPU, all renditions together
    chunk_safe: bool
    why_not_chunk_safe: str = ""
    gop_frames: int | None = None  # fixed closed GOP: seams must fall on its multiples
    audio: bool = True
    thumbnails: bool = False
    graph: bool = False  # ladders always run as a graph (packaging needs assembling)
    # `cost` per rendition (each with its own decode of the source); () = equal shares.
    rendition_costs: tuple[float, ...] = ()
    audio_args: tuple[str, ...] = ()  # the audio encoder's options (may it be cut in pieces?)
