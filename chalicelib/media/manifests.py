"""The published manifests: HLS master playlist, DASH MPD over the same CMAF segments,
and the WebVTT index of a thumbnail sprite. Written from what was actually packaged
(segment sizes and durations), so bandwidths are measured, not promised."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from chalicelib.media.codecs import codec_string


@dataclass(frozen=True)
class MediaPlaylist:
    folder: str  # "720p", relative to the output folder
    init: str  # the EXT-X-MAP URI, relative to the folder
    segments: tuple[tuple[str, float], ...]  # (uri, seconds)
    target_duration: int

    @property
    def duration(self) -> float:
        return sum(seconds for _, seconds in self.segments)


def read_media_playlist(out: Path, folder: str) -> MediaPlaylist:
    init, segments, target, pending = "", [], 0, None
    for line in (out / folder / "index.m3u8").read_text().splitlines():
        if line.startswith("#EXT-X-MAP:URI="):
            init = line.split("=", 1)[1].strip('"')
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            pending = float(line.split(":", 1)[1].rstrip(",").split(",")[0])
        elif line and not line.startswith("#") and pending is not None:
            segments.append((line, pending))
            pending = None
    return MediaPlaylist(folder, init, tuple(segments), target)


@dataclass(frozen=True)
class Rates:
    peak: int  # bits/s of the largest segment
    average: int  # bits/s over the whole stream


def measure(out: Path, playlist: MediaPlaylist) -> Rates:
    folder = out / playlist.folder
    peak, total_bits = 0, 0
    for uri, seconds in playlist.segments:
        bits = (folder / uri).stat().st_size * 8
        total_bits += bits
        if seconds > 0.5:  # a short last segment would overstate the peak
            peak = max(peak, math.ceil(bits / seconds))
    average = math.ceil(total_bits / playlist.duration) if playlist.duration else 0
    return Rates(peak=max(peak, average), average=average)


@dataclass(frozen=True)
class Variant:
    playlist: MediaPlaylist
    width: int
    height: int
    fps: Fraction
    codecs: str
    rates: Rates


def describe(out: Path, folder: str, width: int, height: int, fps: Fraction) -> Variant:
    playlist = read_media_playlist(out, folder)
    codecs = codec_string(out / folder / playlist.init)
    return Variant(playlist, width, height, fps, codecs, measure(out, playlist))


def variant_record(v: Variant) -> dict[str, Any]:
    """A variant as JSON (what a package task hands the assemble)."""
    p = v.playlist
    return {"folder": p.folder, "init": p.init, "segments": [list(s) for s in p.segments],
            "target": p.target_duration, "width": v.width, "height": v.height,
            "fps": [v.fps.numerator, v.fps.denominator], "codecs": v.codecs,
            "peak": v.rates.peak, "average": v.rates.average}  # fmt: skip


def variant_of(record: dict[str, Any]) -> Variant:
    segments = tuple((str(uri), float(seconds)) for uri, seconds in record["segments"])
    playlist = MediaPlaylist(record["folder"], record["init"], segments, int(record["target"]))
    return Variant(playlist, int(record["width"]), int(record["height"]),
                   Fraction(*record["fps"]), record["codecs"],
                   Rates(int(record["peak"]), int(record["average"])))  # fmt: skip


def master_playlist(variants: list[Variant], audio: Variant | None) -> str:
    """Tallest first; each variant's bandwidth includes the audio it plays with."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_peak = audio_average = 0
    if audio is not None:
        audio_peak, audio_average = audio.rates.peak, audio.rates.average
        lines.append(
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,'
            f'URI="{audio.playlist.folder}/index.m3u8"'
        )
    for v in sorted(variants, key=lambda v: v.height, reverse=True):
        codecs = v.codecs + (f",{audio.codecs}" if audio else "")
        attributes = [
            f"BANDWIDTH={v.rates.peak + audio_peak}",
            f"AVERAGE-BANDWIDTH={v.rates.average + audio_average}",
            f"RESOLUTION={v.width}x{v.height}",
            f'CODECS="{codecs}"',
            f"FRAME-RATE={float(v.fps):.3f}",
        ]
        if audio is not None:
            attributes.append('AUDIO="audio"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), f"{v.playlist.folder}/index.m3u8"]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _representation(v: Variant, rid: str, extra: str) -> list[str]:
    p = v.playlist
    lines = [
        f'      <Representation id={quoteattr(rid)} bandwidth="{v.rates.peak}" '
        f"codecs={quoteattr(v.codecs)}{extra}>",
        '        <SegmentList timescale="1000">',
        f"          <Initialization sourceURL={quoteattr(f'{p.folder}/{p.init}')}/>",
        "          <SegmentTimeline>",
    ]
    start = 0
    for _, seconds in p.segments:
        # Start times are rounded once from the running sum, so they never drift.
        end = round((start / 1000 + seconds) * 1000)
        lines.append(f'            <S t="{start}" d="{end - start}"/>')
        start = end
    lines.append("          </SegmentTimeline>")
    lines += [
        f"          <SegmentURL media={quoteattr(f'{p.folder}/{uri}')}/>" for uri, _ in p.segments
    ]
    lines += ["        </SegmentList>", "      </Representation>"]
    return lines


def mpd(variants: list[Variant], audio: Variant | None, sample_rate: int | None) -> str:
    """A static DASH MPD whose SegmentLists name the very CMAF segments HLS plays."""
    duration = max((v.playlist.duration for v in variants), default=0.0)
    fps = variants[0].fps if variants else Fraction(0)
    frame_rate = f"{fps.numerator}/{fps.denominator}" if fps.denominator != 1 else str(fps)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" '
        f'mediaPresentationDuration="{_duration(duration)}" minBufferTime="PT4S">',
        f'  <Period id="0" start="PT0S" duration="{_duration(duration)}">',
        '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" '
        f'segmentAlignment="true" startWithSAP="1" frameRate="{frame_rate}">',
    ]
    for v in sorted(variants, key=lambda v: v.height, reverse=True):
        size = f' width="{v.width}" height="{v.height}"'
        lines += _representation(v, v.playlist.folder, size)
    lines.append("    </AdaptationSet>")
    if audio is not None:
        lines.append(
            '    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" '
            'segmentAlignment="true" startWithSAP="1" lang="und">'
        )
        rate = f' audioSamplingRate="{sample_rate}"' if sample_rate else ""
        lines += _representation(audio, "audio", rate)
        lines.append("    </AdaptationSet>")
    lines += ["  </Period>", "</MPD>"]
    return "\n".join(lines) + "\n"


def _vtt_time(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:06.3f}"


def sprite_vtt(
    count: int, every: float, duration: float, width: int, height: int, columns: int
) -> str:
    """One cue per thumbnail, pointing into sprite.jpg with a `#xywh=` fragment."""
    lines = ["WEBVTT", ""]
    for i in range(count):
        start = i * every
        if start >= duration and i:
            break
        end = min(duration, start + every)
        x, y = (i % columns) * width, (i // columns) * height
        lines += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"sprite.jpg#xywh={x},{y},{width},{height}",
            "",
        ]
    return "\n".join(lines)
