"""What CMAF segments on disk hold, read from their boxes: each one's start and length in seconds.

Tests compare these with what the manifests say. Read straight from ISO BMFF boxes
(`mdhd` timescale in the init segment; `tfdt` and `trun` sample durations in each
media segment), as a player's demuxer does, so a manifest is checked against the
media and not against another tool's summary of it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts"}


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of every box, depth first into container boxes."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif size == 0:
            size = end - at
        yield kind, at + header, at + size
        if kind in _CONTAINERS:
            yield from _boxes(data, at + header, at + size)
        at += size


def timescale(init: Path) -> int:
    """The track's media timescale (`mdhd`), which tfdt and sample durations count in."""
    data = init.read_bytes()
    for kind, at, _ in _boxes(data):
        if kind == b"mdhd":
            offset = at + (20 if data[at] == 1 else 12)
            return struct.unpack(">I", data[offset : offset + 4])[0]
    raise ValueError(f"{init}: no mdhd box")


def _default_duration(init: Path) -> int:
    data = init.read_bytes()
    for kind, at, _ in _boxes(data):
        if kind == b"trex":
            return struct.unpack(">I", data[at + 12 : at + 16])[0]
    return 0


@dataclass(frozen=True)
class Segment:
    start: float  # seconds, from tfdt
    duration: float  # seconds, the sum of its samples' durations
    samples: int

    @property
    def end(self) -> float:
        return self.start + self.duration


def segment(path: Path, init: Path) -> Segment:
    data = path.read_bytes()
    scale, default = timescale(init), _default_duration(init)
    start, total, count = None, 0, 0
    for kind, at, _ in _boxes(data):
        if kind == b"tfhd":
            flags = int.from_bytes(data[at + 1 : at + 4], "big")
            offset = at + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
            if flags & 0x08:
                default = struct.unpack(">I", data[offset : offset + 4])[0]
        elif kind == b"tfdt":
            wide = data[at] == 1
            start = struct.unpack(">Q" if wide else ">I", data[at + 4 : at + (12 if wide else 8)])[
                0
            ]
        elif kind == b"trun":
            flags = int.from_bytes(data[at + 1 : at + 4], "big")
            samples = struct.unpack(">I", data[at + 4 : at + 8])[0]
            offset = at + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
            fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
            for _ in range(samples):
                duration = default
                if flags & 0x100:
                    duration = struct.unpack(">I", data[offset : offset + 4])[0]
                offset += 4 * len(fields)
                total += duration
            count += samples
    if start is None:
        raise ValueError(f"{path}: no tfdt box")
    return Segment(start / scale, total / scale, count)
