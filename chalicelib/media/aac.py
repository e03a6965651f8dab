"""Audio in pieces: the source's audio for cutting, one piece's AAC encode, and the join.

A piece is encoded to ADTS, whose frames are one AAC packet each and carry their own
length, so the join keeps packets by count (chalicelib.graph.audio_cuts says which)
and writes them end to end: a bitstream copy, nothing decoded again. The joined stream
is muxed into MP4 with its first packet (the first piece's priming) 1024 samples before
0, so the muxer writes the edit list a monolithic encode gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from chalicelib.media.argv import own_input, source_input
from chalicelib.media.sandbox import INPUT_FENCE, OUTPUT_FENCE
from chalicelib.media.steps import MediaFailed

PRIMING = 1024  # samples ffmpeg's native AAC encoder writes before the first (initial_padding)


class BadStream(MediaFailed):
    """A piece's file is not the ADTS stream its encode should have written."""


def extract(source: Path, out: Path) -> list[str]:
    """The source's first audio stream, stream-copied into MOV: its timestamps count
    samples (Matroska's count milliseconds, 24 samples at 48 kHz), so pieces cut from it
    are trimmed on the very sample."""
    return [*source_input(source), "-map", "0:a:0", "-c", "copy", "-vn", "-sn", "-dn",
            "-f", "mov", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip


def cut(whole: Path, start: float, end: float | None, out: Path) -> list[str]:
    """Stream-copy [start, end) seconds of the extracted audio, keeping its timestamps."""
    seek = ["-ss", f"{start:.6f}"] if start > 0 else []
    stop = [] if end is None else ["-to", f"{end:.6f}"]
    return [*seek, *own_input(whole, copyts=True), *stop, "-map", "0:a:0", "-c", "copy",
            "-copyts", "-f", "mov", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip


def encode_piece(
    piece: Path, out: Path, audio_args: tuple[str, ...], start: float, end: float | None
) -> list[str]:
    """Samples [start, end) seconds of the track (pre- and post-roll included) to ADTS.

    The trim works on the source's own timestamps (`-copyts`), before the resampler ffmpeg
    adds for `-ar`, so the piece's resampler starts on the same instant the whole track's
    passes through (seams fall on whole source samples).
    """
    trim = f"atrim=start={start:.6f}" if start > 0 else "atrim"
    if end is not None:
        trim += (":" if start > 0 else "=") + f"end={end:.6f}"
    return [*own_input(piece, copyts=True), "-map", "0:a:0", "-vn",
            "-af", f"{trim},asetpts=PTS-STARTPTS", *audio_args,
            "-f", "adts", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip


def frames(path: Path) -> Iterator[bytes]:
    """The ADTS frames of a file, one AAC packet each."""
    data = path.read_bytes()
    at = 0
    while at < len(data):
        header = data[at : at + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
            raise BadStream(f"{path.name}: no ADTS frame at byte {at}")
        size = (header[3] & 0x03) << 11 | header[4] << 3 | header[5] >> 5
        if size < 7 or at + size > len(data):
            raise BadStream(f"{path.name}: a frame at byte {at} runs past the end")
        yield data[at : at + size]
        at += size


def join(pieces: list[tuple[Path, int, int | None]], out: Path) -> int:
    """The pieces' kept packets (skip `drop`, then keep `count`, None: the rest) into one
    ADTS stream; returns the packets written.

    A piece with fewer packets is where the source's audio ends (before its video, say):
    it keeps what it has, and the pieces after it have none.
    """
    written = 0
    with out.open("wb") as joined:
        for path, drop, count in pieces:
            kept = list(frames(path))[drop:]
            if count is not None:
                kept = kept[:count]
            joined.write(b"".join(kept))
            written += len(kept)
    return written


def mux(joined: Path, out: Path, rate: int) -> list[str]:
    """The joined ADTS into MP4 by stream copy, its priming packet before 0 (edit list)."""
    return [*INPUT_FENCE, "-itsoffset", f"-{PRIMING / rate:.6f}", "-f", "aac",
            "-i", f"file:{joined}", "-map", "0:a:0", "-c", "copy",
            "-f", "mp4", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip
