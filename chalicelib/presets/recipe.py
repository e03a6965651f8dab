"""What a preset asks ffmpeg to do, per rendition, and whether it can be cut into chunks.

A preset becomes a `Recipe`: one `VideoRecipe` per rendition (the encoder options
of one output), the audio options, and the facts the planner needs (`work()`).
Single-file presets (`raw` and structured) are one rendition; a ladder has many.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from chalicelib.presets.allowlist import check_args, check_filter_chain
from chalicelib.presets.ladder import Ladder, Rendition, bits_per_second
from chalicelib.presets.work import Work

# Realtime-factor divisors against libx264 at the same size (measured on one vCPU).
CODEC_COST = {
    "libx264": 1.0, "libx265": 3.0, "libsvtav1": 2.0, "libvpx-vp9": 4.0, "libaom-av1": 8.0,
}  # fmt: skip
_ENCODERS = {"h264": "libx264", "h265": "libx265", "av1": "libsvtav1"}
# Video filters that act on each frame alone: a chunk seam cannot change what they do.
FRAME_FILTERS = frozenset(
    {"scale", "crop", "pad", "format", "setsar", "setdar", "hflip", "vflip", "transpose", "eq",
     "unsharp", "null"}
)  # fmt: skip
# Options that change the timeline or need all of it: not chunk-safe.
_TIMELINE_OPTIONS = frozenset(
    {"-ss", "-t", "-to", "-r", "-pass", "-filter_complex", "-lavfi", "-filter:v", "-af:v",
     "-fpsmax", "-vsync", "-fps_mode", "-itsoffset", "-force_key_frames"}
)  # fmt: skip
# Options that belong to the audio stream or the container, not a video chunk.
_AUDIO_OPTIONS = frozenset(
    {"-c:a", "-codec:a", "-acodec", "-b:a", "-ab", "-ac", "-ar", "-af", "-q:a", "-aq",
     "-rematrix_maxval", "-filter:a", "-sample_fmt", "-channel_layout"}
)  # fmt: skip
_CONTAINER_OPTIONS = frozenset({"-movflags", "-f", "-y", "-n", "-map", "-an", "-vn", "-sn"})


@dataclass(frozen=True)
class VideoRecipe:
    name: str  # "720p", or the preset's output file name for a single-file preset
    height: int | None
    encoder: str
    args: tuple[str, ...]  # encoder options (codec, rate control, GOP), no filters
    filters: tuple[str, ...]  # the per-frame video filters (scale, ...)
    gop_frames: int | None = None


@dataclass(frozen=True)
class Recipe:
    videos: tuple[VideoRecipe, ...]
    audio_args: tuple[str, ...] | None  # None: the output has no audio
    container: str = "mp4"
    chunk_safe: bool = False
    why_not: str = ""
    ladder: Ladder | None = None
    output: str = ""  # single-file presets: the output name
    extra: dict = field(default_factory=dict)

    def video(self, name: str | None) -> VideoRecipe:
        return next(v for v in self.videos if v.name == name)

    def costs(self, speed_720p: float) -> tuple[float, ...]:
        """CPU seconds per source second for each rendition, on one vCPU."""
        return tuple(
            ((video.height or 720) / 720) ** 2 * CODEC_COST.get(video.encoder, 1.5) / speed_720p
            for video in self.videos
        )

    def cost(self, speed_720p: float) -> float:
        """CPU seconds per source second for all renditions, on one vCPU."""
        return sum(self.costs(speed_720p))

    def work(self, speed_720p: float) -> Work:
        return Work(
            renditions=tuple(v.name for v in self.videos),
            cost=self.cost(speed_720p),
            rendition_costs=self.costs(speed_720p),
            chunk_safe=self.chunk_safe,
            why_not_chunk_safe=self.why_not,
            gop_frames=self.videos[0].gop_frames if self.videos else None,
            audio=self.audio_args is not None,
            audio_args=self.audio_args or (),
            thumbnails=bool(self.ladder and self.ladder.thumbnails),
            graph=self.ladder is not None,
        )


# --- ladders ------------------------------------------------------------------


def gop_frames(fps: Fraction | None, segment_seconds: int) -> int | None:
    """A GOP of exactly one segment: keyframes at every segment start in every rendition."""
    if fps is None:
        return None
    return max(1, round(fps * segment_seconds))


def _rendition_args(ladder: Ladder, r: Rendition, gop: int | None, threads: int) -> list[str]:
    codec = ladder.video.codec
    encoder = _ENCODERS[codec]
    args = ["-c:v", encoder, "-preset", ladder.video.preset, "-pix_fmt", "yuv420p"]
    cap = r.cap_bps
    if r.crf is not None:
        args += ["-crf", str(r.crf)]
    elif r.bitrate is not None:
        args += ["-b:v", str(bits_per_second(r.bitrate))]
    else:  # a per-title ladder's allowed resolution, judged before its rate is chosen
        args += ["-crf", "23"]
    if cap:
        args += ["-maxrate", str(cap), "-bufsize", str(cap * 2)]
    if r.profile and codec != "av1":
        args += ["-profile:v", r.profile]
    if r.level and codec == "h264":
        args += ["-level:v", r.level]
    keyint = gop or 250
    if codec == "h264":
        # A fixed, closed GOP: no scene-cut keyframes, so every rendition cuts alike.
        args += ["-g", str(keyint), "-keyint_min", str(keyint), "-sc_threshold", "0",
                 "-flags", "+cgop"]  # fmt: skip
        if threads:
            args += ["-threads", str(threads)]
    elif codec == "h265":
        params = f"keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:log-level=error"
        if threads:
            params += f":frame-threads={threads}"
            args += ["-threads", str(threads)]
        args += ["-tag:v", "hvc1", "-x265-params", params]
    else:
        params = "irefresh-type=2"  # closed GOP: every keyframe starts a clean sequence
        if threads:
            params += f":lp={threads}"
        args += ["-g", str(keyint), "-svtav1-params", params]
    return args


def ladder_recipe(
    ladder: Ladder, source_height: int | None, fps: Fraction | None, threads: int = 0
) -> Recipe:
    gop = gop_frames(fps, ladder.segment_seconds)
    # The typed fields already bound every value; the allow-list judges the argv they
    # become as well, so a ladder can never emit an option a raw preset could not.
    videos = tuple(
        VideoRecipe(
            name=r.name,
            height=r.height,
            encoder=_ENCODERS[ladder.video.codec],
            args=tuple(check_args(_rendition_args(ladder, r, gop, threads))),
            filters=(check_filter_chain(f"scale=-2:{r.height}", "video"),),
            gop_frames=gop,
        )
        for r in ladder.renditions_for(source_height)
    )
    audio = None
    if ladder.audio is not None:
        a = ladder.audio
        encoder = "aac" if a.codec == "aac" else "libopus"
        audio = ("-c:a", encoder, "-b:a", a.bitrate, "-ac", str(a.channels),
                 "-ar", str(a.sample_rate))  # fmt: skip
    return Recipe(
        videos=videos,
        audio_args=audio,
        chunk_safe=gop is not None,
        why_not="" if gop else "frame rate unknown",
        ladder=ladder,
    )


# --- single-file presets (raw and structured) ---------------------------------


def _value_after(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg in names:
            return args[i + 1]
    return None


def _fixed_gop(args: list[str]) -> int | None:
    """The GOP length when the preset fixes it (equal min/max keyint, no scene cuts)."""
    for name in ("-x264opts", "-x264-params", "-x265-params"):
        value = _value_after(args, name)
        if value is None:
            continue
        pairs = dict(
            part.split("=", 1) if "=" in part else (part, "1") for part in value.split(":")
        )
        keyint = pairs.get("keyint")
        minimum = pairs.get("min-keyint")
        if (
            keyint
            and keyint == minimum
            and keyint.isdigit()
            and pairs.get("scenecut") in ("0", "-1")
            and pairs.get("open_gop", pairs.get("open-gop", "0")) == "0"
        ):
            return int(keyint)
    g, kmin, sc = (_value_after(args, n) for n in ("-g", "-keyint_min", "-sc_threshold"))
    if g and g.isdigit() and g == kmin and sc == "0":
        return int(g)
    return None


def _filters(args: list[str]) -> tuple[list[str], str]:
    """The preset's video filters if every one of them is per-frame; else why not."""
    value = _value_after(args, "-vf")
    if value is None:
        return [], ""
    filters = [f.strip() for f in value.split(",") if f.strip()]
    for f in filters:
        name = re.split(r"[=@]", f, maxsplit=1)[0]
        if name not in FRAME_FILTERS or any(c in f for c in "[];"):
            return filters, f"filter {name!r} may need the whole timeline"
    return filters, ""


def _height(filters: list[str], source_height: int | None) -> int | None:
    for f in filters:
        if match := re.match(r"scale=-?\d*:(\d+)", f):
            return int(match.group(1))
    return source_height


def single_recipe(
    args: list[str],
    output: str,
    source_height: int | None,
    two_pass: bool = False,
    threads: int = 0,
) -> Recipe:
    """A raw or structured preset as one rendition; chunk-safe only with a fixed closed GOP."""
    encoder = _value_after(args, "-c:v", "-codec:v", "-vcodec") or "libx264"
    filters, filter_problem = _filters(args)
    gop = _fixed_gop(args)
    why = ""
    if two_pass:
        why = "two-pass encodes need the whole timeline"
    elif timeline := sorted(set(args) & _TIMELINE_OPTIONS):
        why = f"option {timeline[0]} changes or needs the whole timeline"
    elif filter_problem:
        why = filter_problem
    elif gop is None:
        why = "the preset does not fix the GOP (equal keyint and min-keyint, no scene cuts)"
    elif encoder not in ("libx264", "libx265"):
        why = f"chunked encodes are made for libx264 and libx265, not {encoder}"
    elif "-an" in args:
        pass
    video_args, audio_args, i = [], [], 0
    while i < len(args):
        arg = args[i]
        takes_value = i + 1 < len(args) and not args[i + 1].startswith("-")
        pair = [arg, args[i + 1]] if takes_value else [arg]
        if arg in _AUDIO_OPTIONS:
            audio_args += pair
        elif arg == "-vf" or arg in _CONTAINER_OPTIONS:
            pass
        else:
            video_args += pair
        i += len(pair)
    if threads and "-threads" not in video_args:
        video_args += ["-threads", str(threads)]
    container = output.rsplit(".", 1)[-1].lower() if "." in output else "mp4"
    default_audio = ["-c:a", "libopus"] if container == "webm" else ["-c:a", "aac"]
    audio = None if "-an" in args else tuple(audio_args or default_audio)
    video = VideoRecipe(
        name=output,
        height=_height(filters, source_height),
        encoder=encoder,
        args=tuple(video_args),
        filters=tuple(filters),
        gop_frames=gop,
    )
    return Recipe(
        videos=(video,),
        audio_args=audio,
        container=container,
        chunk_safe=not why,
        why_not=why,
        output=output,
    )
