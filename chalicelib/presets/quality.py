"""What a job or a preset asks to be measured: `"quality": {"metrics": ["vmaf", ...]}`.

Off unless asked. A job's own `quality` wins over its preset's (an empty list turns it
off). Quality is of video: an output with no video cannot be asked for it. Pure.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import InvalidInput

METRICS = ("vmaf", "psnr", "ssim")
# Outputs of these containers carry no video: quality asked of them is refused.
AUDIO_CONTAINERS = frozenset({"m4a", "mp3", "aac", "opus", "ogg", "oga", "flac", "wav"})


def check(value: Any, where: str = "quality") -> tuple[str, ...]:
    """`{"metrics": [...]}` → the metrics, each once, in the order asked; 400 on anything else."""
    if value is None:
        return ()
    allowed = ", ".join(METRICS)
    if not isinstance(value, dict) or set(value) - {"metrics"}:
        raise InvalidInput(f'{where} must be {{"metrics": [...]}} with metrics among {allowed}')
    metrics = value.get("metrics") or []
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise InvalidInput(f"{where}.metrics must be a list of names among {allowed}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InvalidInput(
            f"{where}.metrics: unknown metric {unknown[0]!r}; the allowed metrics are {allowed}"
        )
    return tuple(dict.fromkeys(metrics))


def split(document: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A preset's data without its `quality`, and the metrics that asked for."""
    if "quality" not in document:
        return document, ()
    rest = {k: v for k, v in document.items() if k != "quality"}
    return rest, check(document["quality"], "preset data field 'quality'")


def of_preset(data: str) -> tuple[str, ...]:
    """The metrics a stored preset's data asks for (it was judged when it was saved)."""
    try:
        document = json.loads(data)
    except (TypeError, ValueError):
        return ()
    return split(document)[1] if isinstance(document, dict) else ()


def audio_only(args: list[str], output: str, ladder: bool = False) -> bool:
    """Whether a preset's output has no video (a ladder always has)."""
    if ladder:
        return False
    suffix = output.rsplit(".", 1)[-1].lower() if "." in output else ""
    return "-vn" in args or suffix in AUDIO_CONTAINERS


def check_video(metrics: tuple[str, ...], args: list[str], output: str, ladder: bool) -> None:
    if metrics and audio_only(args, output, ladder):
        raise InvalidInput(
            f"quality ({', '.join(metrics)}) is measured on video, and output {output!r} "
            "is audio only: drop 'quality' or use a preset that makes video"
        )


def wanted(job_options: dict[str, Any] | None, preset_data: str) -> tuple[str, ...]:
    """What a job measures: its own `quality` if it gave one, else its preset's."""
    options = job_options or {}
    if options.get("quality") is not None:
        return tuple(options["quality"].get("metrics") or ())
    return of_preset(preset_data)
