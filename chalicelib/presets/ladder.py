"""Ladder presets: an adaptive-bitrate ladder described as typed, bounded data.

`{"ladder": {...}}` is the third preset format (beside `raw` and the structured
form). Every field is an enumeration or a bounded number, so a ladder can name
nothing but its own streams: no free text reaches ffmpeg. The argv it becomes is
built by `chalicelib.media.argv`; the planner reads only heights, codec and the
segment length.

A ladder is `fixed` (each rendition's own rate) or `per-title`: then its renditions are
the resolutions allowed, and probe encodes choose each rung's resolution and CRF
(chalicelib.presets.pertitle) for its VMAF target.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Codec = Literal["h264", "h265", "av1"]
# x264/x265 speed presets; svt-av1 takes a number 0-13 (given as a string here).
SPEED_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)  # fmt: skip
PROFILES: dict[str, tuple[str, ...]] = {
    "h264": ("baseline", "main", "high"),
    "h265": ("main",),
    "av1": ("main",),
}
LEVELS = ("3.0", "3.1", "4.0", "4.1", "4.2", "5.0", "5.1", "5.2")
_RATE = re.compile(r"^(\d{1,6})(k|M)?$")
MIN_BPS, MAX_BPS = 32_000, 200_000_000
MIN_VMAF, MAX_VMAF = 50, 99
DEFAULT_TARGET_VMAF = 95.0
# A per-title ladder's default rung targets: the top target, then this much lower per rung.
RUNG_STEP_VMAF = 8.0


def bits_per_second(value: str) -> int:
    """'3000k' → 3000000; '6M' → 6000000; plain digits are bits per second."""
    match = _RATE.match(value)
    if not match:
        raise ValueError("a bit rate is digits with an optional k or M, e.g. '3000k'")
    number, unit = int(match.group(1)), match.group(2)
    return number * {"k": 1000, "M": 1_000_000, None: 1}[unit]


def _rate(value: str) -> str:
    bps = bits_per_second(value)
    if not MIN_BPS <= bps <= MAX_BPS:
        raise ValueError(f"bit rate must be {MIN_BPS // 1000}k to {MAX_BPS // 1_000_000}M")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoSettings(_Strict):
    codec: Codec = "h264"
    preset: str = "veryfast"

    @model_validator(mode="after")
    def _preset_fits_codec(self) -> VideoSettings:
        if self.codec == "av1":
            if not (self.preset.isdigit() and 0 <= int(self.preset) <= 13):
                raise ValueError("av1 (svt-av1) preset must be a number 0 to 13, e.g. '8'")
        elif self.preset not in SPEED_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(SPEED_PRESETS)}")
        return self


class Rendition(_Strict):
    height: int = Field(ge=144, le=4320)
    bitrate: str | None = None
    maxrate: str | None = None
    crf: int | None = Field(None, ge=0, le=63)
    profile: str | None = None
    level: Literal[LEVELS] | None = None  # type: ignore[valid-type]

    _rates = field_validator("bitrate", "maxrate")(lambda v: v if v is None else _rate(v))

    @model_validator(mode="after")
    def _rate_control(self) -> Rendition:
        if self.height % 2:
            raise ValueError("height must be even")
        # Neither is allowed here: a per-title ladder's rates are chosen (`Ladder` checks).
        if self.bitrate is not None and self.crf is not None:
            raise ValueError("give either 'bitrate' (capped VBR) or 'crf' with a 'maxrate' cap")
        if self.crf is not None and self.maxrate is None:
            raise ValueError("'crf' needs a 'maxrate' cap")
        return self

    @property
    def name(self) -> str:
        return f"{self.height}p"

    @property
    def cap_bps(self) -> int:
        """The peak rate the encoder may not exceed (VBV maxrate)."""
        if self.maxrate:
            return bits_per_second(self.maxrate)
        # Capped VBR: 1.5x the average is a common ladder cap.
        return bits_per_second(self.bitrate or "0") * 3 // 2


class AudioSettings(_Strict):
    codec: Literal["aac", "opus"] = "aac"
    bitrate: Annotated[str, Field(max_length=8)] = "128k"
    channels: Literal[1, 2, 6] = 2
    sample_rate: Literal[44100, 48000] = 48000

    _rates = field_validator("bitrate")(_rate)


class ThumbnailSettings(_Strict):
    every_seconds: int = Field(5, ge=1, le=600)
    width: int = Field(320, ge=64, le=1920)
    sprite: bool = True


def _vmaf(value: float | None) -> float | None:
    if value is not None and not MIN_VMAF <= value <= MAX_VMAF:
        raise ValueError(f"a VMAF target must be {MIN_VMAF} to {MAX_VMAF}, not {value:g}")
    return value


# What a per-title ladder allows when it lists no renditions: the common 16:9 heights.
PER_TITLE_HEIGHTS = (1080, 720, 540, 360, 240)


class Ladder(_Strict):
    video: VideoSettings = VideoSettings()
    mode: Literal["fixed", "per-title"] = "fixed"
    target_vmaf: float | None = None  # per-title: the top rung's target
    targets: list[float] | None = Field(None, min_length=1, max_length=10)  # per rung, top first
    renditions: list[Rendition] = Field(
        default_factory=lambda: [Rendition(height=h) for h in PER_TITLE_HEIGHTS],
        min_length=1,
        max_length=10,
    )
    audio: AudioSettings | None = AudioSettings()
    segment_seconds: int = Field(4, ge=1, le=10)
    packaging: list[Literal["hls", "dash", "mp4"]] = Field(["hls", "dash"], min_length=1)
    thumbnails: ThumbnailSettings | None = None

    _vmafs = field_validator("target_vmaf")(_vmaf)

    @field_validator("targets")
    @classmethod
    def _descending(cls, targets: list[float] | None) -> list[float] | None:
        if targets is not None:
            for target in targets:
                _vmaf(target)
            if any(a <= b for a, b in itertools.pairwise(targets)):
                raise ValueError("targets go top rung first, each lower than the one before")
        return targets

    @model_validator(mode="after")
    def _per_title(self) -> Ladder:
        if self.mode == "fixed":
            if self.target_vmaf is not None or self.targets is not None:
                raise ValueError("'target_vmaf' and 'targets' are for \"mode\": \"per-title\"")
            for r in self.renditions:
                if r.bitrate is None and r.crf is None:
                    raise ValueError(
                        f"rendition {r.name}: give either 'bitrate' (capped VBR) or 'crf' with "
                        'a \'maxrate\' cap (or use "mode": "per-title" to have them chosen)'
                    )
            return self
        if self.video.codec != "h264":
            raise ValueError("per-title ladders are probed with h264 (codec 'h264')")
        if self.targets and self.target_vmaf is not None and self.targets[0] != self.target_vmaf:
            raise ValueError("the first of 'targets' is the top rung's: it must equal target_vmaf")
        if self.targets and len(self.targets) > len(self.renditions):
            raise ValueError("more targets than renditions allowed: each rung needs a height")
        return self

    @property
    def per_title(self) -> bool:
        return self.mode == "per-title"

    def rung_targets(self) -> list[float]:
        """A per-title ladder's VMAF target of each rung, top first."""
        if self.targets:
            return list(self.targets)
        top = self.target_vmaf if self.target_vmaf is not None else DEFAULT_TARGET_VMAF
        count = len(self.renditions)
        return [t for i in range(count) if (t := top - RUNG_STEP_VMAF * i) >= MIN_VMAF]

    def chosen(self, renditions: list[Rendition]) -> Ladder:
        """This ladder with the renditions a per-title choice made (a fixed ladder from here)."""
        return self.model_copy(update={"renditions": renditions, "mode": "fixed",
                                       "target_vmaf": None, "targets": None})  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self) -> Ladder:
        heights = [r.height for r in self.renditions]
        if len(set(heights)) != len(heights):
            raise ValueError("each rendition needs its own height (names are '<height>p')")
        if len(set(self.packaging)) != len(self.packaging):
            raise ValueError("packaging lists each of hls, dash, mp4 at most once")
        for rendition in self.renditions:
            allowed = PROFILES[self.video.codec]
            if rendition.profile is not None and rendition.profile not in allowed:
                raise ValueError(
                    f"profile {rendition.profile!r} is not one of {', '.join(allowed)} "
                    f"for {self.video.codec}"
                )
        if self.audio is not None and self.audio.codec == "opus" and "hls" in self.packaging:
            raise ValueError("HLS players need AAC audio: use codec 'aac' with hls packaging")
        return self

    def renditions_for(self, source_height: int | None) -> list[Rendition]:
        """Tallest first; taller than the source is skipped (never upscaled).

        If every rendition is taller, the smallest is kept at the source height.
        """
        ordered = sorted(self.renditions, key=lambda r: r.height, reverse=True)
        if not source_height:
            return ordered
        kept = [r for r in ordered if r.height <= source_height]
        if kept:
            return kept
        smallest = ordered[-1]
        return [smallest.model_copy(update={"height": source_height - source_height % 2})]


class LadderPreset(_Strict):
    ladder: Ladder
