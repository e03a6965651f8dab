"""Preset data: parsing, validation and the ffmpeg argv it produces.

Two formats come from the original server: `{"raw": ["-c:v libx264", ...]}` and
the structured ffmpeg-commander form `{"format", "video", "audio", "filter"}`.
Both end as an argv that `allowlist.check_args` judges option by option, so the
structured fields map onto the same table as raw options. Everything here is pure:
no I/O, no AWS, no Chalice.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from chalicelib.errors import InvalidInput
from chalicelib.presets import quality
from chalicelib.presets.allowlist import check_args

_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-%]{0,127}$")


def split_raw(raw: list[str]) -> list[str]:
    """Split each raw string on spaces, as the original server did."""
    return [part for item in raw for part in item.split(" ") if part]


# --- the structured (ffmpeg-commander) format --------------------------------


def _as_str(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    return str(value) if isinstance(value, (int, float)) else value


def _token(pattern: str) -> Any:
    return Annotated[str, BeforeValidator(_as_str), Field(pattern=pattern, max_length=64)]


_Name = _token(r"^[a-z0-9][a-z0-9_\-]*$")
_Rate = _token(r"^(|0|auto|\d+(\.\d+)?[kKmM]?)$")
_Num = _token(r"^-?\d+(\.\d+)?$")
_Time = _token(r"^(\d+(\.\d+)?|\d{1,2}:\d{2}:\d{2}(\.\d+)?)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FormatOptions(_Strict):
    container: _token(r"^[a-z0-9]*$") = ""
    clip: bool = False
    startTime: _Time | None = None
    stopTime: _Time | None = None


class VideoOptions(_Strict):
    codec: _Name = "libx264"
    preset: _token(r"^[a-z]*$") = "none"
    encode_mode: Literal["1", "2", "crf"] = Field("1", alias="pass")
    crf: int = Field(23, ge=0, le=63)
    bitrate: _Rate = ""
    minrate: _Rate = ""
    maxrate: _Rate = ""
    bufsize: _Rate = ""
    pixel_format: _token(r"^[a-z0-9_]+$") = "auto"
    frame_rate: _token(r"^(auto|\d+(\.\d+)?|\d+/\d+)$") = "auto"
    speed: _token(r"^(auto|\d+(\.\d+)?\*PTS|PTS(/|\*)\d+(\.\d+)?)$") = "auto"
    tune: _token(r"^[a-z]+$") = "none"
    profile: _token(r"^[a-z0-9]+$") = "none"
    level: _token(r"^(none|\d(\.\d)?)$") = "none"
    faststart: bool = False
    size: _token(r"^(source|custom|\d{2,5})$") = "source"
    width: _token(r"^\d{1,5}$") = "1920"
    height: _token(r"^\d{1,5}$") = "1080"
    format: _token(r"^[a-z]+$") = "widescreen"
    aspect: _token(r"^(auto|\d+(\.\d+)?|\d+:\d+)$") = "auto"
    scaling: _token(r"^[a-z_]+$") = "auto"
    codec_options: _token(r"^[A-Za-z0-9_.=:\-]*$") = ""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AudioOptions(_Strict):
    codec: _Name = "copy"
    channel: _token(r"^(source|\d)$") = "source"
    quality: _Rate = "auto"
    sample_rate: _token(r"^(auto|\d{4,6})$") = "auto"
    # The original UI template spells it sampleRate; both are read.
    sampleRate: _token(r"^(auto|\d{4,6})$") = "auto"
    volume: _token(r"^\d{1,3}$") = "100"


class FilterOptions(_Strict):
    deband: bool = False
    deshake: bool = False
    deflicker: bool = False
    dejudder: bool = False
    denoise: Literal["none", "light", "medium", "heavy"] = "none"
    deinterlace: Literal["none", "frame", "field", "frame_nospatial", "field_nospatial"] = "none"
    brightness: _Num = "0"
    contrast: _Num = "1"
    saturation: _Num = "0"
    gamma: _Num = "0"
    acontrast: _token(r"^\d{1,3}$") = "33"


class StructuredPreset(_Strict):
    format: FormatOptions = FormatOptions()
    video: VideoOptions = VideoOptions()
    audio: AudioOptions | None = None
    filter: FilterOptions = FilterOptions()


class RawPreset(_Strict):
    raw: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        min_length=1, max_length=200
    )


_DENOISE = {
    "light": "removegrain=22",
    "medium": "vaguedenoiser=threshold=3:method=soft:nsteps=5",
    "heavy": "vaguedenoiser=threshold=6:method=soft:nsteps=5",
}
_DEINTERLACE = {
    "frame": "yadif=0:-1:0",
    "field": "yadif=1:-1:0",
    "frame_nospatial": "yadif=2:-1:0",
    "field_nospatial": "yadif=3:-1:0",
}


def _set(value: str, *skip: str) -> bool:
    return value not in ("", *skip)


def _video_filters(v: VideoOptions, f: FilterOptions) -> list[str]:
    filters = []
    if v.size == "custom":
        filters.append(f"scale={v.width}:{v.height}")
    elif v.size != "source":
        # -2 keeps the other side even, which libx264 requires (-1 does not).
        filters.append(f"scale={v.size}:-2" if v.format == "widescreen" else f"scale=-2:{v.size}")
    if filters and v.scaling != "auto":
        filters[-1] += f":flags={v.scaling}"
    if v.speed != "auto":
        filters.append(f"setpts={v.speed}")
    filters += [name for name in ("deband", "deshake", "deflicker", "dejudder") if getattr(f, name)]
    if f.denoise in _DENOISE:
        filters.append(_DENOISE[f.denoise])
    if f.deinterlace in _DEINTERLACE:
        filters.append(_DEINTERLACE[f.deinterlace])
    eq = [
        f"{name}={value}"
        for name, value, default in (
            ("contrast", f.contrast, "1"),
            ("brightness", f.brightness, "0"),
            ("saturation", f.saturation, "0"),
            ("gamma", f.gamma, "0"),
        )
        if float(value) != float(default)
    ]
    if eq:
        filters.append("eq=" + ":".join(eq))
    return filters


def structured_args(p: StructuredPreset) -> list[str]:
    v, f = p.video, p.filter
    args: list[str] = []
    if p.format.clip:
        if p.format.startTime:
            args += ["-ss", p.format.startTime]
        if p.format.stopTime:
            args += ["-to", p.format.stopTime]
    args += ["-c:v", v.codec]
    if _set(v.preset, "none"):
        args += ["-preset", v.preset]
    if v.encode_mode == "crf" and v.crf:
        args += ["-crf", str(v.crf)]
    for flag, value in (("-b:v", v.bitrate), ("-minrate", v.minrate), ("-maxrate", v.maxrate)):
        if _set(value, "0", "auto"):
            args += [flag, value]
    if _set(v.bufsize, "0", "auto"):
        args += ["-bufsize", v.bufsize]
    if _set(v.pixel_format, "auto"):
        args += ["-pix_fmt", v.pixel_format]
    if _set(v.frame_rate, "auto"):
        args += ["-r", v.frame_rate]
    if _set(v.tune, "none"):
        args += ["-tune", v.tune]
    if _set(v.profile, "none"):
        args += ["-profile:v", v.profile]
    if _set(v.level, "none"):
        args += ["-level", v.level]
    if v.faststart:
        args += ["-movflags", "+faststart"]
    if v.codec_options and v.codec in ("libx264", "libx265"):
        args += [f"-{v.codec[3:]}-params", v.codec_options]
    video_filters = _video_filters(v, f)
    if video_filters:
        args += ["-vf", ",".join(video_filters)]
    audio_filters = []
    a = p.audio
    if a is not None:
        args += ["-c:a", a.codec]
        if a.channel != "source":
            args += ["-rematrix_maxval", "1.0", "-ac", a.channel]
        if _set(a.quality, "auto"):
            args += ["-b:a", a.quality]
        rate = a.sample_rate if a.sample_rate != "auto" else a.sampleRate
        if rate != "auto":
            args += ["-ar", rate]
        if a.volume != "100":
            audio_filters.append(f"volume={int(a.volume) / 100}")
    if f.acontrast != "33":
        audio_filters.append(f"acontrast={int(f.acontrast) / 100}")
    if audio_filters:
        args += ["-af", ",".join(audio_filters)]
    return [*args, "-y"]


# --- the public face ----------------------------------------------------------


class PresetSpec(BaseModel):
    """A validated preset: the argv it contributes and whether it is two-pass."""

    args: list[str]
    two_pass: bool = False
    structured: bool = False
    ladder: bool = False  # a ladder preset: its argv is built per rendition (chalicelib/media)
    quality: tuple[str, ...] = ()  # metrics measured per rendition (chalicelib.presets.quality)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "data"
    if first["type"] == "extra_forbidden":
        return f"preset data has an unknown field {where!r}"
    return f"preset data field {where!r}: {first['msg']}"


def parse_preset_data(data: str) -> PresetSpec:
    """Parse a preset's `data` JSON string; every option must be on the allow-list."""
    try:
        document = json.loads(data)
    except RecursionError:
        raise InvalidInput("preset data is not valid JSON: it nests too deeply") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"preset data is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput(
            "preset data must be a JSON object with 'raw', 'ladder' or structured fields"
        )
    document, metrics = quality.split(document)
    if "ladder" not in document and {"mode", "target_vmaf", "targets"} & set(document):
        raise InvalidInput(
            'per-title ("mode": "per-title", "target_vmaf") is for ladder presets: put it in '
            '{"ladder": {"mode": "per-title", "target_vmaf": 95, ...}}'
        )
    return parse_document(document).model_copy(update={"quality": metrics})


def parse_document(document: dict[str, Any]) -> PresetSpec:
    try:
        if "ladder" in document:
            from chalicelib.presets.ladder import LadderPreset
            from chalicelib.presets.recipe import ladder_recipe

            preset = LadderPreset.model_validate(document)
            ladder_recipe(preset.ladder, None, None)  # every rendition's argv is allow-listed
            return PresetSpec(args=[], ladder=True)
        if "raw" in document:
            raw = RawPreset.model_validate(document)
            return PresetSpec(args=check_args(split_raw(raw.raw)))
        structured = StructuredPreset.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from None
    return PresetSpec(
        args=check_args(structured_args(structured)),
        two_pass=structured.video.encode_mode == "2",
        structured=True,
    )


def check_output_name(output: str) -> str:
    if not _OUTPUT_NAME.match(output) or ".." in output:
        raise InvalidInput(
            "output must be a plain file name such as 'video.mp4' (letters, digits, . _ - %)"
        )
    return output
