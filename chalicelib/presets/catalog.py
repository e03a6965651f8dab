"""Presets: named ffmpeg recipes, validated when saved, unique by name."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.presets import quality
from chalicelib.presets.ladder import Ladder
from chalicelib.presets.spec import PresetSpec, check_output_name, parse_preset_data
from chalicelib.store import counters
from chalicelib.store.models import Preset, SystemItem, connection, utcnow

_X264 = "-x264opts scenecut=0:open_gop=0:min-keyint=72:keyint=72"


def _h264(height: int, profile: str, level: str, kbps: int) -> str:
    raw = [
        f"-vf scale=-2:{height}",
        "-c:v libx264",
        f"-profile:v {profile}",
        f"-level:v {level}",
        _X264,
        f"-minrate {kbps}k",
        f"-maxrate {kbps}k",
        f"-bufsize {kbps}k",
        f"-b:v {kbps}k",
        "-y",
    ]
    return _raw_json(raw)


def _raw_json(raw: list[str]) -> str:
    return json.dumps({"raw": raw}, separators=(",", ":"))


# The five presets of the original server (scripts/30_presets.sql), options unchanged.
SEEDED: tuple[tuple[int, str, str, str], ...] = (
    (1, "h264_baseline_360p_600", _h264(360, "baseline", "3.0", 600), "h264_baseline_360p_600.mp4"),
    (2, "h264_main_480p_1000", _h264(480, "main", "3.1", 1000), "h264_main_480p_1000.mp4"),
    (3, "h264_main_720p_3000", _h264(720, "main", "4.0", 3000), "h264_main_720p_3000.mp4"),
    (4, "h264_main_1080p_6000", _h264(1080, "main", "4.2", 6000), "h264_main_1080p_6000.mp4"),
    (
        5,
        "webm_vp9_720p_3000",
        _raw_json(
            [
                "-vf scale=-2:720",
                "-c:v libvpx-vp9",
                "-level:v 4.0",
                "-b:v 3000k",
                "-pix_fmt yuv420p",
                "-f webm",
                "-y",
            ]
        ),
        "webm_vp9_3000_720.webm",
    ),
)

# Two ladders (ids 6 and 7): HLS and DASH over one set of CMAF segments, progressive MP4s
# and thumbnails. Renditions taller than a source are skipped, never upscaled.
_H264_LADDER = {
    "video": {"codec": "h264", "preset": "veryfast"},
    "renditions": [
        {"height": 1080, "bitrate": "6000k", "profile": "high", "level": "4.2"},
        {"height": 720, "bitrate": "3000k", "profile": "main", "level": "4.0"},
        {"height": 480, "bitrate": "1000k", "profile": "main", "level": "3.1"},
        {"height": 360, "bitrate": "600k", "profile": "baseline", "level": "3.0"},
    ],
    "audio": {"codec": "aac", "bitrate": "128k", "channels": 2},
    "segment_seconds": 4,
    "packaging": ["hls", "dash", "mp4"],
    "thumbnails": {"every_seconds": 5, "width": 320, "sprite": True},
}
_AV1_LADDER = {
    "video": {"codec": "av1", "preset": "8"},
    "renditions": [
        {"height": 1080, "crf": 32, "maxrate": "4500k"},
        {"height": 720, "crf": 34, "maxrate": "2200k"},
        {"height": 480, "crf": 36, "maxrate": "900k"},
    ],
    "audio": {"codec": "aac", "bitrate": "128k", "channels": 2},
    "segment_seconds": 4,
    "packaging": ["hls", "dash"],
    "thumbnails": {"every_seconds": 5, "width": 320, "sprite": True},
}
LADDERS: tuple[tuple[str, Ladder], ...] = (
    ("h264_ladder_hls_dash", Ladder.model_validate(_H264_LADDER)),
    ("av1_ladder_hls_dash", Ladder.model_validate(_AV1_LADDER)),
)
LADDER_SEEDS: tuple[tuple[int, str, str, str], ...] = tuple(
    (6 + i, name, json.dumps({"ladder": body}, separators=(",", ":")), "master.m3u8")
    for i, (name, body) in enumerate(
        (("h264_ladder_hls_dash", _H264_LADDER), ("av1_ladder_hls_dash", _AV1_LADDER))
    )
)
_LAST_SEEDED_ID = max(seed[0] for seed in SEEDED + LADDER_SEEDS)

_NAME_MAX = 64


@dataclass
class PresetInput:
    name: str | None = None
    description: str | None = None
    data: str | None = None
    output: str | None = None
    active: bool | None = None


def _name_key(name: str) -> str:
    return f"preset-name#{name}"


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _NAME_MAX or any(ord(c) < 32 for c in name) or "/" in name:
        raise InvalidInput(f"name must be 1 to {_NAME_MAX} printable characters without '/'")
    return name


def _default_output(name: str, spec: PresetSpec) -> str:
    if spec.ladder:
        return "master.m3u8"  # a ladder's outputs have fixed names; this one is the entry point
    ext = "webm" if "webm" in spec.args or "libvpx-vp9" in spec.args else "mp4"
    return f"{name}.{ext}"


def _conflict_on_name(exc: TransactWriteError, name: str) -> Conflict | None:
    if "ConditionalCheckFailed" in str(exc.cancellation_reasons):
        return Conflict(f"a preset named {name!r} already exists")
    return None


def check_preset(payload: PresetInput) -> tuple[str, PresetSpec, str]:
    """Every check `create_preset` makes before it writes: (name, spec, output name)."""
    if payload.name is None or payload.data is None:
        raise InvalidInput("a preset needs 'name' and 'data'")
    name = _check_name(payload.name)
    spec = parse_preset_data(payload.data)
    output = check_output_name(payload.output or _default_output(name, spec))
    quality.check_video(spec.quality, spec.args, output, spec.ladder)
    return name, spec, output


def create_preset(payload: PresetInput, preset_id: int | None = None) -> Preset:
    name, _spec, output = check_preset(payload)
    preset = Preset(
        preset_id if preset_id is not None else counters.next_value("preset-id"),
        name=name,
        description=payload.description if payload.description is not None else name,
        data=payload.data,
        output=output,
        active=True if payload.active is None else payload.active,
    )
    try:
        with TransactWrite(connection=connection()) as tx:
            tx.save(
                SystemItem(_name_key(name), ref=preset.id),
                condition=SystemItem.name.does_not_exist(),
            )
            tx.save(preset, condition=Preset.id.does_not_exist())
    except TransactWriteError as exc:
        raise (_conflict_on_name(exc, name) or exc) from None
    return preset


def get_preset(preset_id: int) -> Preset:
    try:
        return Preset.get(preset_id)
    except Preset.DoesNotExist:
        raise NotFound(f"no preset with id {preset_id}") from None


def get_preset_by_name(name: str) -> Preset:
    try:
        claim = SystemItem.get(_name_key(name), consistent_read=True)
        return Preset.get(int(claim.ref), consistent_read=True)
    except (SystemItem.DoesNotExist, Preset.DoesNotExist, TypeError):
        raise NotFound(f"no preset named {name!r}") from None


def list_presets() -> list[Preset]:
    return list(Preset.by_id.query("preset"))


def update_preset(preset_id: int, payload: PresetInput) -> Preset:
    """Update the given fields; a rename moves the unique-name claim atomically."""
    current = get_preset(preset_id)
    name = _check_name(payload.name) if payload.name is not None else current.name
    data = payload.data if payload.data is not None else current.data
    spec = parse_preset_data(data)  # refuse unsafe data before anything is written
    output = check_output_name(payload.output) if payload.output is not None else current.output
    quality.check_video(spec.quality, spec.args, output, spec.ladder)
    actions = [
        Preset.name.set(name),
        Preset.data.set(data),
        Preset.output.set(output),
        Preset.updated.set(utcnow()),
    ]
    if payload.description is not None:
        actions.append(Preset.description.set(payload.description))
    if payload.active is not None:
        actions.append(Preset.active.set(payload.active))
    try:
        with TransactWrite(connection=connection()) as tx:
            tx.update(Preset(preset_id), actions=actions, condition=Preset.name == current.name)
            if name != current.name:
                tx.save(
                    SystemItem(_name_key(name), ref=preset_id),
                    condition=SystemItem.name.does_not_exist(),
                )
                tx.delete(SystemItem(_name_key(current.name)))
    except TransactWriteError as exc:
        raise (_conflict_on_name(exc, name) or exc) from None
    return get_preset(preset_id)


def seed_presets() -> int:
    """Create the original server's presets that are missing; returns how many were made."""
    made = 0
    for preset_id, name, data, output in SEEDED + LADDER_SEEDS:
        try:
            create_preset(
                PresetInput(name=name, description=name, data=data, output=output), preset_id
            )
            made += 1
        except Conflict:
            continue
        except TransactWriteError:
            continue
    # Keep the id counter past the seeded ids so user presets never collide.
    item = SystemItem("preset-id")
    with contextlib.suppress(UpdateError):  # already past the seeds
        item.update(
            actions=[SystemItem.value.set(_LAST_SEEDED_ID)],
            condition=SystemItem.value.does_not_exist() | (SystemItem.value < _LAST_SEEDED_ID),
        )
    return made


def public_view(preset: Preset) -> dict:
    return {
        "id": int(preset.id),
        "name": preset.name,
        "description": preset.description,
        "data": preset.data,
        "output": preset.output,
        "active": preset.active,
    }
