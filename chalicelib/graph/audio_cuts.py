"""Where a long audio track is cut into pieces that join without a gap, click or drift.
Pure: sample arithmetic only, no I/O, no ffmpeg.

AAC codes 1024 samples a packet, and each packet's MDCT window reaches into its
neighbours, so a piece encoded on its own would ramp in from silence and leave a click
at every seam. Each piece therefore decodes a pre-roll of a few frames before its start
(so the encoder's state converges on the same signal the neighbour saw) and a post-roll
after its end (so its last kept window overlaps real audio, not silence). The join keeps,
by packet count, only the packets that decode to the piece's own samples: the encoder's
priming packet and the pre-roll packets are dropped, but for the first piece, whose
priming the joined track keeps (its edit list skips it, as a monolithic encode's does).

Seams are multiples of 1024 output samples and also fall on a whole number of source
samples (44.1 kHz into 48 kHz: every 5120), so each piece's trim starts exactly where
the monolithic encode's resampler would be at that instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FRAME = 1024  # samples an AAC-LC packet codes
PRE_ROLL_FRAMES = 4  # measured: 4 converge the native encoder to within its own noise
POST_ROLL_FRAMES = 2  # the last kept window overlaps real audio (none: a click)
# Containers whose audio timestamps count samples (or 90 kHz ticks): a piece's trim by
# time then lands on the very sample. Matroska, WebM, FLV and ASF count milliseconds,
# 24 samples at 48 kHz: their audio stays one task.
EXACT_CONTAINERS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "mpegts", "wav", "w64"})
# Codecs the piece cut stream-copies into a MOV intermediate.
COPY_CODECS = ("aac", "mp3", "ac3", "eac3", "alac", "pcm_")
# Encoder options a piece can be encoded with alike (no filter sees a piece's edges).
_PLAIN_OPTIONS = frozenset({"-c:a", "-codec:a", "-acodec", "-b:a", "-ab", "-ac", "-ar"})


@dataclass(frozen=True)
class AudioCut:
    """One piece: the output samples it contributes, and what it decodes around them."""

    index: int
    start: int  # first output sample it contributes
    end: int | None  # exclusive; None: to the end of the track
    pre: int  # samples decoded before `start`, encoded, then dropped
    post: int  # samples decoded after `end`, encoded, then dropped
    rate: int  # output sample rate

    @property
    def task_id(self) -> str:
        return task_id(self.index)

    @property
    def decode_from(self) -> int:
        return self.start - self.pre

    @property
    def decode_to(self) -> int | None:
        return None if self.end is None else self.end + self.post

    @property
    def drop(self) -> int:
        """Packets dropped at the head: the priming packet and the pre-roll's."""
        return 0 if self.index == 0 else 1 + self.pre // FRAME

    @property
    def keep(self) -> int | None:
        """Packets kept after those (the first piece keeps its priming); None: the rest."""
        if self.end is None:
            return None
        return (self.end - self.start) // FRAME + (1 if self.index == 0 else 0)

    def seconds(self, samples: int) -> float:
        return samples / self.rate


def task_id(index: int) -> str:
    return f"audio-{index:04d}"


def index_of(task: str) -> int | None:
    """The piece of `audio-0003` (3); None for the one task of a whole track (`audio`)."""
    head, _, number = task.partition("-")
    return int(number) if head == "audio" and number.isdigit() else None


def grain(rate: int, source_rate: int) -> int:
    """The least seam spacing that is whole AAC frames and whole source samples."""
    step = rate // math.gcd(rate, source_rate or rate)
    return FRAME * step // math.gcd(FRAME, step)


def pre_roll(rate: int, source_rate: int) -> int:
    """PRE_ROLL_FRAMES, rounded up to the grain (so the trim starts on a source sample)."""
    g = grain(rate, source_rate)
    return math.ceil(PRE_ROLL_FRAMES * FRAME / g) * g


def piece_samples(rate: int, source_rate: int, piece_seconds: float) -> int:
    """About `piece_seconds` of output samples, a multiple of the grain."""
    g = grain(rate, source_rate)
    return max(1, math.floor(piece_seconds * rate / g)) * g


def cuts(duration: float, rate: int, piece: int, pre: int) -> list[AudioCut]:
    """Pieces of `piece` samples; the last runs to the end and is one to two pieces long.

    A track shorter than two pieces is one piece (the one-task audio of a whole job).
    """
    total = math.floor(duration * rate)
    count = total // piece if piece > 0 else 0
    if count < 2:
        return [AudioCut(0, 0, None, 0, 0, rate)]
    post = POST_ROLL_FRAMES * FRAME
    return [
        AudioCut(
            index=i,
            start=i * piece,
            end=None if i == count - 1 else (i + 1) * piece,
            pre=0 if i == 0 else pre,
            post=0 if i == count - 1 else post,
            rate=rate,
        )
        for i in range(count)
    ]


def output_rate(audio_args: tuple[str, ...], source_rate: int) -> int:
    """The sample rate of an AAC output that pieces can be encoded for, else 0.

    Only ffmpeg's native `aac` with plain options (no filter: a loudness filter, say,
    needs the whole timeline); the rate is `-ar`'s, else the source's.
    """
    pairs = dict(zip(audio_args[::2], audio_args[1::2], strict=False))
    codec = pairs.get("-c:a") or pairs.get("-codec:a") or pairs.get("-acodec")
    if codec != "aac" or len(audio_args) % 2 or not set(pairs) <= _PLAIN_OPTIONS:
        return 0
    rate = pairs.get("-ar", "")
    return int(rate) if rate.isdigit() else source_rate


def exact_source(
    container: str, codec: str | None, sample_rate: int | None, start: float = 0.0
) -> int:
    """The source's sample rate when its audio can be cut on samples, else 0.

    A source that does not start at 0 (MPEG-TS, mostly) may start its audio at another
    instant than its video, and the pieces count samples from 0: it stays one task.
    """
    names = set(container.split(","))
    if not sample_rate or not codec or start or not names & EXACT_CONTAINERS:
        return 0
    return sample_rate if codec.startswith(COPY_CODECS) else 0


def layout(
    audio_args: tuple[str, ...], source_rate: int, piece_seconds: float
) -> tuple[int, int, int]:
    """(output rate, samples a piece, pre-roll) for the plan's shape; zeros: one audio task."""
    rate = output_rate(audio_args, source_rate) if source_rate and piece_seconds > 0 else 0
    if not rate:
        return (0, 0, 0)
    return (rate, piece_samples(rate, source_rate, piece_seconds), pre_roll(rate, source_rate))


def tasks(duration: float, rate: int, piece: int, pre: int) -> list[tuple[str, float]]:
    """The audio tasks (id, seconds each decodes): `audio` alone, or one per piece."""
    found = cuts(duration, rate, piece, pre)
    if len(found) == 1:
        return [("audio", duration)]
    return [
        (
            c.task_id,
            (duration if c.decode_to is None else c.decode_to / rate) - c.decode_from / rate,
        )
        for c in found
    ]
