"""The job's audio as graph tasks: one task for a short track (`audio`), else pieces cut
on AAC frames (`audio-0000`, ...; chalicelib.graph.audio_cuts) that the assemble joins.

The fan-out extracts the source's audio once (stream copy) and cuts each piece's range,
pre- and post-roll and a margin included, so a piece task downloads only its own part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from chalicelib.graph import audio_cuts
from chalicelib.graph.audio_cuts import AudioCut
from chalicelib.graph.plan import Plan, TaskSpec
from chalicelib.media import aac, argv, steps
from chalicelib.media.scratch import Scratch
from chalicelib.presets.recipe import Recipe

AUDIO_PIECE = "pieces/audio.mka"
AUDIO_OUTPUT = "out/audio.m4a"
# Copied around a piece's decoded range: a stream-copy cut starts on the packet at or
# before its start, and a decoder's first packet after a cut decodes to nothing usable.
CUT_MARGIN_SECONDS = 1.0

Fetch = Callable[[str, Path], Path]


def cuts_of(p: Plan) -> list[AudioCut]:
    """The plan's audio pieces (one for a track it keeps whole)."""
    if p.shape is None:
        return [AudioCut(0, 0, None, 0, 0, 0)]
    rate, piece, pre = p.shape.audio_cut
    return audio_cuts.cuts(p.shape.duration, rate, piece, pre)


def is_cut(p: Plan) -> bool:
    return len(cuts_of(p)) > 1


def piece_name(cut: AudioCut) -> str:
    return f"pieces/{cut.task_id}.mov"


def output_name(cut: AudioCut) -> str:
    return f"out/{cut.task_id}.aac"


def pieces(
    source: Path, tasks: tuple[TaskSpec, ...], p: Plan, folder: Path, run: steps.Run
) -> Iterator[tuple[Path, str, tuple[TaskSpec, ...]]]:
    """What the audio tasks download: (local file, workspace name, tasks it makes ready)."""
    if not tasks:
        return
    folder.mkdir(parents=True, exist_ok=True)
    if not is_cut(p):
        path = folder / "audio.mka"
        run(argv.extract_audio(source, path), folder, None)
        yield path, AUDIO_PIECE, tasks
        return
    whole = folder / "audio.mov"
    run(aac.extract(source, whole), folder, None)
    by_id = {t.id: t for t in tasks}
    for cut in cuts_of(p):
        path = folder / f"{cut.task_id}.mov"
        start = max(0.0, cut.seconds(cut.decode_from) - CUT_MARGIN_SECONDS)
        end = cut.decode_to
        stop = None if end is None else cut.seconds(end) + CUT_MARGIN_SECONDS
        run(aac.cut(whole, start, stop, path), folder, None)
        yield path, piece_name(cut), (by_id[cut.task_id],)
    whole.unlink(missing_ok=True)


def encode(
    spec: TaskSpec, p: Plan, recipe: Recipe, scratch: Scratch, run: steps.Run, fetch: Fetch,
    duration: float,
) -> tuple[Path, str]:  # fmt: skip
    """One audio task's output: (local file, workspace name)."""
    index = audio_cuts.index_of(spec.id)
    if index is None:  # the whole track, once
        source = fetch(AUDIO_PIECE, scratch.path / "audio.mka")
        out = scratch.out / "audio.m4a"
        steps.encode_audio(source, out, recipe, run, duration)
        return out, AUDIO_OUTPUT
    assert recipe.audio_args is not None
    cut = cuts_of(p)[index]
    piece = fetch(piece_name(cut), scratch.path / "piece.mov")
    out = scratch.out / f"{cut.task_id}.aac"
    end = cut.decode_to
    args = aac.encode_piece(piece, out, recipe.audio_args, cut.seconds(cut.decode_from),
                            None if end is None else cut.seconds(end))  # fmt: skip
    length = None if end is None else cut.seconds(end - cut.decode_from)
    run(args, out.parent, length)
    return out, output_name(cut)


def joined(p: Plan, scratch: Scratch, run: steps.Run, fetch: Fetch) -> Path:
    """The job's audio track (the assemble's): its one task's, or its pieces joined."""
    if not is_cut(p):
        return fetch(AUDIO_OUTPUT, scratch.path / "audio.m4a")
    folder = scratch.path / "audio"
    folder.mkdir(exist_ok=True)
    parts = []
    for cut in cuts_of(p):
        path = fetch(output_name(cut), folder / f"{cut.task_id}.aac")
        parts.append((path, cut.drop, cut.keep))
    stream = folder / "joined.aac"
    aac.join(parts, stream)
    out = scratch.path / "audio.m4a"
    run(aac.mux(stream, out, cuts_of(p)[0].rate), scratch.path, None)
    return out
