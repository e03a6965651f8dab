"""Media facts from ffmpeg itself: the layer ships no ffprobe, so `ffmpeg -i` is parsed."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from chalicelib.media import sandbox
from chalicelib.media.argv import Loopback, source_input

# Demuxers a source may be read with. Playlists and lists (hls, concat, ...)
# name other files or URLs, so they are not on it.
ALLOWED_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,mxf,asf,ogg,"
    "wav,mp3,aac,flac,h264,hevc,m4v,dv,gif,yuv4mpegpipe,ivf,w64,aiff"
)
_TIMEOUT_SECONDS = 60


class MediaError(Exception):
    """The source itself is the problem: retrying will not help."""


@cache
def ffmpeg_exe() -> str:
    """The layer's ffmpeg in Lambda (/opt/bin), else the pip-installed static build."""
    configured = os.environ.get("OE_FFMPEG")
    if configured:
        return configured
    if Path("/opt/bin/ffmpeg").exists():
        return "/opt/bin/ffmpeg"
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        found = shutil.which("ffmpeg")
        if not found:
            raise RuntimeError("no ffmpeg: install imageio-ffmpeg or attach the layer") from None
        return found


@dataclass
class Stream:
    index: int
    kind: str  # video | audio | subtitle | data
    codec: str
    profile: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bit_rate: int | None = None
    sample_rate: int | None = None


@dataclass
class MediaInfo:
    container: str
    duration: float | None
    bit_rate: int | None
    streams: list[Stream] = field(default_factory=list)
    start: float = 0.0  # the first timestamp: MPEG-TS sources rarely start at 0

    @property
    def video(self) -> Stream | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> Stream | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    def summary(self) -> dict:
        data = asdict(self)
        data["streams"] = [{k: v for k, v in s.items() if v is not None} for s in data["streams"]]
        return data


_INPUT = re.compile(r"^Input #0, ([^ ]+), from ", re.M)
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_START = re.compile(r"Duration: [^,]*, start: (-?\d+(?:\.\d+)?)")
_BITRATE = re.compile(r"Duration: .*?bitrate: (\d+) kb/s")
_STREAM = re.compile(r"^\s*Stream #0:(\d+)[^:]*: (Video|Audio|Subtitle|Data): (.*)$", re.M)
_SIZE = re.compile(r"(?<![\w.])(\d{2,5})x(\d{2,5})(?![\w.])")
_FPS = re.compile(r"(\d+(?:\.\d+)?) fps")
_KBPS = re.compile(r"(\d+) kb/s")
_HZ = re.compile(r"(\d+) Hz")
_PROFILE = re.compile(r"^\w+ \(([^)/]+)\)")


def parse(stderr: str) -> MediaInfo:
    """Parse ffmpeg's description of input #0."""
    header = _INPUT.search(stderr)
    if not header:
        raise MediaError("not a media file ffmpeg can read")
    duration = None
    if match := _DURATION.search(stderr):
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    bit_rate = int(m.group(1)) * 1000 if (m := _BITRATE.search(stderr)) else None
    streams = []
    for match in _STREAM.finditer(stderr):
        index, kind, rest = int(match.group(1)), match.group(2).lower(), match.group(3)
        stream = Stream(index=index, kind=kind, codec=rest.split()[0].rstrip(","))
        if profile := _PROFILE.match(rest):
            stream.profile = profile.group(1).strip()
        if kind == "video" and (size := _SIZE.search(rest)):
            stream.width, stream.height = int(size.group(1)), int(size.group(2))
        if fps := _FPS.search(rest):
            stream.fps = float(fps.group(1))
        if kbps := _KBPS.search(rest):
            stream.bit_rate = int(kbps.group(1)) * 1000
        if hz := _HZ.search(rest):
            stream.sample_rate = int(hz.group(1))
        streams.append(stream)
    start = float(m.group(1)) if (m := _START.search(stderr)) else 0.0
    return MediaInfo(
        container=header.group(1),
        duration=duration,
        bit_rate=bit_rate,
        streams=streams,
        start=start,
    )


def probe(path: Path, *, restricted: bool = True) -> MediaInfo:
    """Describe a local file; only the file protocol and allowed demuxers are used."""
    path = Path(path).resolve()  # ffmpeg runs in the file's folder
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin"]
    if restricted:
        argv += ["-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS]
    return _described([*argv, "-i", f"file:{path}"], path.parent)


def probe_loopback(source: Loopback, cwd: Path) -> MediaInfo:
    """Describe a source served by range on loopback: its header and index, not its bytes."""
    return _described([ffmpeg_exe(), "-hide_banner", "-nostdin", *source_input(source)], cwd)


def _described(argv: list[str], cwd: Path) -> MediaInfo:
    try:
        result = sandbox.run(argv, cwd=cwd, seconds=_TIMEOUT_SECONDS)
    except sandbox.DeadlineExceeded:
        raise MediaError(f"probing took over {_TIMEOUT_SECONDS} s") from None
    stderr = result.stderr
    if "Input #0" not in stderr:
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
        raise MediaError(f"source is not a readable media file: {last[0]}")
    info = parse(stderr)
    if info.video is None and info.audio is None:
        raise MediaError("source is not a readable media file: it has no audio or video streams")
    return info


_VIDEO_BYTES = re.compile(r"video:(\d+)KiB")


def fill_video_bit_rate(path: Path, info: MediaInfo) -> MediaInfo:
    """Containers like WebM store no per-stream bit rate: measure it by remuxing to null."""
    video = info.video
    if video is None or video.bit_rate or not info.duration:
        return info
    path = Path(path).resolve()
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file",
            "-i", f"file:{path}", "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]  # fmt: skip
    try:
        result = sandbox.run(argv, cwd=path.parent, seconds=_TIMEOUT_SECONDS)
    except sandbox.DeadlineExceeded:
        return info  # the bit rate is a nicety; a slow measure must not fail the job
    if match := _VIDEO_BYTES.search(result.stderr):
        video.bit_rate = int(int(match.group(1)) * 1024 * 8 / info.duration)
    return info
