"""RFC 6381 codec strings (`avc1.4d401f`, `hvc1.1.6.L93.B0`, `av01.0.05M.08`, `mp4a.40.2`)
read from an MP4/CMAF init segment's sample entry, for HLS CODECS and DASH @codecs."""

from __future__ import annotations

import struct
from pathlib import Path

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avc3",
               b"hvc1", b"hev1", b"av01", b"mp4a", b"Opus"}  # fmt: skip
_SAMPLE_ENTRY_SKIP = {b"avc1": 78, b"avc3": 78, b"hvc1": 78, b"hev1": 78, b"av01": 78,
                      b"mp4a": 28, b"Opus": 28}  # fmt: skip


def _boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """Every box under [start, end) by type (first occurrence), descending into containers."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            break
        body = pos + header
        found.setdefault(kind, (body, pos + size))
        if kind in _CONTAINERS:
            inner = body + (8 if kind == b"stsd" else _SAMPLE_ENTRY_SKIP.get(kind, 0))
            for k, v in _boxes(data, inner, pos + size).items():
                found.setdefault(k, v)
        pos += size
    return found


def _avc(config: bytes, fourcc: str) -> str:
    return f"{fourcc}.{config[1]:02x}{config[2]:02x}{config[3]:02x}"


def _hevc(config: bytes, fourcc: str) -> str:
    first = config[1]
    space = ("", "A", "B", "C")[first >> 6]
    tier = "H" if first & 0x20 else "L"
    profile = first & 0x1F
    compat = struct.unpack(">I", config[2:6])[0]
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(config[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    level = config[12]
    text = f"{fourcc}.{space}{profile}.{reversed_compat:x}.{tier}{level}"
    return text + "".join(f".{b:02X}" for b in constraints)


def _av1(config: bytes) -> str:
    profile = config[1] >> 5
    level = config[1] & 0x1F
    tier = "H" if config[2] & 0x80 else "M"
    high = bool(config[2] & 0x40)
    twelve = bool(config[2] & 0x20)
    depth = 12 if (profile == 2 and high and twelve) else (10 if high else 8)
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def _mp4a(data: bytes, esds: tuple[int, int]) -> str:
    body = data[esds[0] : esds[1]]
    # DecoderConfigDescriptor (tag 4): objectTypeIndication, then DecoderSpecificInfo (tag 5).
    at = body.find(b"\x04")
    while at != -1:
        object_type = body[at + 2] if body[at + 1] < 0x80 else body[at + 5]
        if object_type == 0x40:
            info = body.find(b"\x05", at)
            if info != -1:
                skip = 2 if body[info + 1] < 0x80 else 5
                return f"mp4a.40.{body[info + skip] >> 3}"
            return "mp4a.40.2"
        at = body.find(b"\x04", at + 1)
    return "mp4a.40.2"


def codec_string(init: Path) -> str:
    """The codec string of the first track of an init segment (or a whole MP4)."""
    data = init.read_bytes()
    boxes = _boxes(data, 0, len(data))
    for fourcc, config in ((b"avcC", "avc"), (b"hvcC", "hevc"), (b"av1C", "av1")):
        if fourcc in boxes:
            start, end = boxes[fourcc]
            body = data[start:end]
            if config == "avc":
                return _avc(body, "avc3" if b"avc3" in boxes else "avc1")
            if config == "hevc":
                return _hevc(body, "hev1" if b"hev1" in boxes else "hvc1")
            return _av1(body)
    if b"esds" in boxes:
        return _mp4a(data, boxes[b"esds"])
    if b"Opus" in boxes:
        return "opus"
    raise ValueError(f"no known sample entry in {init.name}")
