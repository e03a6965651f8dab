"""Audio encoded in pieces and joined (chalicelib.graph.audio) against one encode of the
whole track, with real ffmpeg: the same length, and no click, gap or drift at a seam.

"Codec noise" is measured, not assumed: two AAC encodes of one signal differ everywhere
by a little (and, with ffmpeg's native encoder, now and then by a lot in one frame), so
each seam's difference is held against the median difference of the frames away from
every seam. A click (no post-roll) measures 40x that, a cold encoder (no pre-roll) 6x.
"""

from __future__ import annotations

import statistics
import subprocess
from array import array
from pathlib import Path

import pytest

from chalicelib.graph import audio, audio_cuts
from chalicelib.graph.plan import Kind, Limits, Source, plan
from chalicelib.media import steps
from chalicelib.media.probe import ffmpeg_exe, probe
from chalicelib.media.scratch import Scratch
from chalicelib.presets.recipe import Recipe
from chalicelib.presets.work import Work
from tests.media import generate

SECONDS = 6.0
ARGS = ("-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000")
SIGNAL = "0.25*sin(2*PI*440*t)+0.1*sin(2*PI*1250*t)|0.2*sin(2*PI*330*t)"
NEAR = 256  # samples either side of a seam
AWAY = 4096  # samples around seams (and the ends) left out of the noise floor


def pcm(path: Path) -> array:
    """Decoded 16-bit stereo, interleaved."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
         "-f", "s16le", "-ac", "2", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    samples = array("h")
    samples.frombytes(result.stdout)
    return samples


def sources(folder: Path) -> dict[str, Path]:
    """PCM at the output's rate in MOV, and AAC at 44.1 kHz in MP4 (resampled to 48 kHz)."""
    lavfi = ["-f", "lavfi", "-i", f"aevalsrc={SIGNAL}:s={{rate}}:d={SECONDS}"]
    pcm_args = [a.format(rate=48000) for a in lavfi] + ["-c:a", "pcm_s16le"]
    aac_args = [a.format(rate=44100) for a in lavfi] + ["-c:a", "aac", "-b:a", "192k"]
    return {
        "pcm-48k": generate(folder / "tone.mov", *pcm_args),
        "aac-44k": generate(folder / "tone.mp4", *aac_args),
    }


def cut_and_join(source: Path, folder: Path, piece_seconds: float) -> tuple[Path, list[int]]:
    info = probe(source)
    assert info.audio is not None
    rate = audio_cuts.exact_source(info.container, info.audio.codec, info.audio.sample_rate)
    work = Work(renditions=("a",), cost=0.1, chunk_safe=True, gop_frames=30, audio_args=ARGS)
    limits = Limits(chunk_min_seconds=0, audio_chunk_seconds=piece_seconds)
    p = plan(Source(SECONDS, None, None, has_video=False, audio_rate=rate), work, limits=limits)
    tasks = tuple(t for t in p.tasks if t.kind is Kind.AUDIO)
    recipe = Recipe(videos=(), audio_args=ARGS)
    stored: dict[str, Path] = {}
    for path, name, _ in audio.pieces(source, tasks, p, folder / "split", steps.local_run):
        stored[name] = path
    for spec in tasks:
        with Scratch(folder / "scratch", spec.id) as scratch:
            out, name = audio.encode(spec, p, recipe, scratch, steps.local_run,
                                     lambda n, _: stored[n], SECONDS)  # fmt: skip
            stored[name] = out.rename(folder / out.name)
    with Scratch(folder / "scratch", "assemble") as scratch:
        joined = audio.joined(p, scratch, steps.local_run, lambda n, _: stored[n])
        kept = joined.rename(folder / "joined.m4a")
    return kept, [c.start for c in audio.cuts_of(p)[1:]]


def differences(a: array, b: array) -> list[int]:
    """Per sample (both channels), the larger absolute difference."""
    count = min(len(a), len(b)) // 2
    return [max(abs(a[2 * i] - b[2 * i]), abs(a[2 * i + 1] - b[2 * i + 1])) for i in range(count)]


def seams_and_noise(a: array, b: array, seams: list[int]) -> tuple[list[int], float]:
    """The largest difference near each seam, and the median of each frame's largest
    difference away from every seam (the two encodes' own noise)."""
    d = differences(a, b)
    blocks = [
        max(d[at : at + 1024])
        for at in range(AWAY, len(d) - AWAY - 1024, 1024)
        if all(abs(at + 512 - s) > AWAY for s in seams)
    ]
    return [max(d[s - NEAR : s + NEAR]) for s in seams], statistics.median(blocks)


@pytest.mark.parametrize("kind", ["pcm-48k", "aac-44k"])
def test_audio_in_pieces_joins_to_the_length_of_one_encode_with_no_click_at_a_seam(tmp_path, kind):
    source = sources(tmp_path)[kind]
    whole = tmp_path / "whole.m4a"
    steps.local_run(["-i", f"file:{source}", "-map", "0:a:0", *ARGS, "-f", "mp4", f"file:{whole}"],
                    tmp_path)  # fmt: skip
    joined, seams = cut_and_join(source, tmp_path, 1.0)
    assert len(seams) >= 4  # several pieces: 6 s at ~1 s, the last one to two long
    assert all(s % audio_cuts.FRAME == 0 for s in seams)
    a, b = pcm(whole), pcm(joined)
    assert abs(len(a) - len(b)) // 2 <= audio_cuts.FRAME  # within one AAC frame
    near, noise = seams_and_noise(a, b, seams)
    print(f"{kind}: {len(a) // 2} vs {len(b) // 2} samples; seams {near}, noise {noise}")
    assert noise > 0  # two encodes, not one file twice
    assert max(near) <= 4 * noise, (near, noise)
