"""The media work of each graph task, on local files: split, encode, audio, assemble, thumbnails.

Each step takes a `Run` (argv, working folder, duration for progress) so the
host decides how ffmpeg is spawned and fenced; this module knows nothing of
queues, tables or buckets.
"""

from __future__ import annotations

import collections
import math
import signal
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from chalicelib.media import argv, manifests, sandbox
from chalicelib.media.probe import ffmpeg_exe, probe
from chalicelib.presets.recipe import Recipe, VideoRecipe

Run = Callable[[list[str], Path, "float | None"], None]
FFMPEG_PREFIX = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y")
HLS_MASTER_SCRATCH = "_ffmpeg_master.m3u8"
LOCAL_RUN_SECONDS = 3600


class MediaFailed(Exception):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class FfmpegKilled(MediaFailed):
    """ffmpeg died of a signal nobody here sent (an out-of-memory kill, a crash, a lost host).

    Not the media's fault: the same run may well succeed again, so it is retried.
    """

    def __init__(self, signal_number: int, log_tail: str = "") -> None:
        self.signal = signal_number
        try:
            self.signal_name = signal.Signals(signal_number).name
        except ValueError:
            self.signal_name = f"signal {signal_number}"
        super().__init__(
            f"ffmpeg was killed by signal {signal_number} ({self.signal_name})", log_tail
        )


def local_run(args: list[str], cwd: Path, duration: float | None = None) -> None:
    """The fenced runner without progress, for tests and benches (tasks follow progress)."""
    cwd.mkdir(parents=True, exist_ok=True)
    result = sandbox.run([ffmpeg_exe(), *FFMPEG_PREFIX, *args], cwd=cwd, seconds=LOCAL_RUN_SECONDS)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        tail = "\n".join(collections.deque(lines, maxlen=50))
        raise MediaFailed(f"ffmpeg failed: {lines[-1] if lines else result.returncode}", tail)


# --- the plan's steps -----------------------------------------------------------


@dataclass(frozen=True)
class Seam:
    """One chunk of the timeline, in seconds from the source's start."""

    index: int
    start: float
    end: float | None


def piece_name(index: int) -> str:
    return f"piece-{index:04d}.mkv"


def split(
    source: argv.Source, seams: list[Seam], out: Path, run: Run, source_start: float = 0.0
) -> list[Path]:
    """Stream-copy the source's video into one piece per chunk (no re-encode)."""
    pieces = []
    for seam in seams:
        path = out / piece_name(seam.index)
        run(argv.split_piece(source, seam.start, seam.end, path, source_start), out, None)
        pieces.append(path)
    return pieces


def encode_chunk(
    piece: Path,
    out: Path,
    video: VideoRecipe,
    seam: Seam,
    fps: Fraction,
    run: Run,
    source_start: float = 0.0,
) -> Path:
    args = argv.encode_chunk(piece, out, video, start=seam.start, end=seam.end, fps=fps,
                             source_start=source_start)  # fmt: skip
    length = (seam.end - seam.start) if seam.end is not None else None
    run(args, out.parent, length)
    return out


def encode_chunk_renditions(
    piece: Path,
    outs: list[tuple[VideoRecipe, Path]],
    seam: Seam,
    fps: Fraction,
    run: Run,
    source_start: float = 0.0,
) -> list[Path]:
    """All of a chunk's renditions in one run: the chunk is decoded once, not once each."""
    args = argv.encode_chunk_renditions(piece, outs, start=seam.start, end=seam.end, fps=fps,
                                        source_start=source_start)  # fmt: skip
    length = (seam.end - seam.start) if seam.end is not None else None
    run(args, outs[0][1].parent, length)
    return [out for _, out in outs]


def encode_audio(source: Path, out: Path, recipe: Recipe, run: Run, duration: float | None) -> Path:
    assert recipe.audio_args is not None
    run(argv.encode_audio(source, out, recipe.audio_args), out.parent, duration)
    return out


def join(chunks: list[Path], out: Path, run: Run) -> Path:
    """Chunk files (in order) into one video stream by stream copy."""
    listing = chunks[0].parent / f"{out.stem}.ffconcat"  # names in it are relative to it
    listing.write_text(argv.concat_list(chunks))
    run(argv.join_video(listing, out), out.parent, None)
    listing.unlink()
    return out


@dataclass(frozen=True)
class Packaged:
    files: list[Path]  # every published file, under the output folder


def assemble_single(video: Path, audio: Path | None, out: Path, container: str, run: Run) -> Path:
    run(argv.mux(video, audio, out, container), out.parent, None)
    return out


def assemble_ladder(
    videos: list[tuple[VideoRecipe, Path]],
    audio: Path | None,
    recipe: Recipe,
    fps: Fraction,
    out: Path,
    run: Run,
) -> list[Path]:
    """Progressive MP4s, CMAF segments, master.m3u8 and manifest.mpd into `out`."""
    ladder = recipe.ladder
    assert ladder is not None
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "mp4" in ladder.packaging:
        for video, path in videos:
            target = out / f"{video.name}.mp4"
            run(argv.mux(path, audio, target), out, None)
            written.append(target)
    if {"hls", "dash"} & set(ladder.packaging):
        named = [(video.name, path) for video, path in videos]
        run(argv.package_hls(named, audio, ladder.segment_seconds, HLS_MASTER_SCRATCH), out, None)
        (out / HLS_MASTER_SCRATCH).unlink(missing_ok=True)
        for name in [video.name for video, _ in videos] + (["audio"] if audio else []):
            _fixed_init_name(out / name)
        variants = [describe_variant(out, video.name, path, fps) for video, path in videos]
        audio_variant = None
        if audio is not None:
            audio_variant = manifests.describe(out, "audio", 0, 0, fps)
        write_manifests(variants, audio_variant, recipe, out)
        written += [p for p in out.rglob("*") if p.is_file() and p not in written]
    return sorted(set(written))


def describe_variant(out: Path, name: str, joined: Path, fps: Fraction) -> manifests.Variant:
    info = probe(joined, restricted=False)
    assert info.video is not None
    return manifests.describe(out, name, info.video.width or 0, info.video.height or 0, fps)


def write_manifests(
    variants: list[manifests.Variant], audio: manifests.Variant | None, recipe: Recipe, out: Path
) -> None:
    """master.m3u8 and manifest.mpd over the packaged renditions; without HLS, no playlists."""
    ladder = recipe.ladder
    assert ladder is not None
    if "hls" in ladder.packaging:
        (out / "master.m3u8").write_text(manifests.master_playlist(variants, audio))
    if "dash" in ladder.packaging:
        rate = ladder.audio.sample_rate if ladder.audio else None
        (out / "manifest.mpd").write_text(manifests.mpd(variants, audio, rate))
    if "hls" not in ladder.packaging:
        for playlist in out.glob("*/index.m3u8"):
            playlist.unlink()


def package_rendition(
    video: VideoRecipe, joined: Path, audio: Path | None, recipe: Recipe, fps: Fraction,
    out: Path, run: Run,
) -> manifests.Variant | None:  # fmt: skip
    """One rendition on its own into `out`: its progressive MP4 (with the job's audio), its
    CMAF segments and playlist; its variant for the manifests (None: no HLS or DASH)."""
    ladder = recipe.ladder
    assert ladder is not None
    out.mkdir(parents=True, exist_ok=True)
    if "mp4" in ladder.packaging:
        run(argv.mux(joined, audio, out / f"{video.name}.mp4"), out, None)
    if not {"hls", "dash"} & set(ladder.packaging):
        return None
    named = [(video.name, joined)]
    run(argv.package_hls(named, None, ladder.segment_seconds, HLS_MASTER_SCRATCH), out, None)
    (out / HLS_MASTER_SCRATCH).unlink(missing_ok=True)
    _fixed_init_name(out / video.name)
    return describe_variant(out, video.name, joined, fps)


def package_audio(
    audio: Path, recipe: Recipe, fps: Fraction, out: Path, run: Run
) -> manifests.Variant:
    """The job's audio as its own CMAF rendition, `audio/`, cut as the videos are."""
    assert recipe.ladder is not None
    out.mkdir(parents=True, exist_ok=True)
    run(argv.package_hls([], audio, recipe.ladder.segment_seconds, HLS_MASTER_SCRATCH), out, None)
    (out / HLS_MASTER_SCRATCH).unlink(missing_ok=True)
    _fixed_init_name(out / "audio")
    return manifests.describe(out, "audio", 0, 0, fps)


def _fixed_init_name(folder: Path) -> None:
    """ffmpeg numbers init segments per variant (init_2.mp4): publish them as init.mp4."""
    for init in folder.glob("init_*.mp4"):
        init.rename(folder / "init.mp4")
        playlist = folder / "index.m3u8"
        text = playlist.read_text().replace(f'URI="{init.name}"', 'URI="init.mp4"')
        playlist.write_text(text)


def thumbnail_range(every: int, start: float, end: float | None, duration: float) -> range:
    """The thumbnails (n: picture at n x every seconds) whose times fall in [start, end)."""
    count = max(1, math.ceil(duration / every - 1e-9))  # pictures at 0, N, 2N, ... < duration
    first = math.ceil(start / every - 1e-9)
    stop = count if end is None else min(count, math.ceil(end / every - 1e-9))
    return range(first, max(first, stop))


def poster_time(duration: float) -> float:
    return round(duration * 0.1, 3)


def chunk_thumbnails(
    piece: Path,
    out: Path,
    seam: Seam,
    fps: Fraction,
    every: int,
    width: int,
    duration: float,
    poster_height: int,
    run: Run,
    source_start: float = 0.0,
) -> list[Path]:
    """This chunk's share of `thumbnails/NNNN.jpg` (and the poster, if it is here) into out.

    Each chunk's task decodes only its own piece, so thumbnails of a long source take the
    time of a chunk, not of the whole timeline.
    """
    folder = out / "thumbnails"
    folder.mkdir(parents=True, exist_ok=True)
    numbers = thumbnail_range(every, seam.start, seam.end, duration)
    at = poster_time(duration)
    here = seam.start <= at and (seam.end is None or at < seam.end)
    if not numbers and not here:
        return []
    args = argv.chunk_thumbnails(
        piece, start=seam.start, end=seam.end, fps=fps, source_start=source_start, every=every,
        first=numbers.start, stop=numbers.stop, width=width,
        poster=(at, poster_height) if here else None,
    )  # fmt: skip
    length = (seam.end - seam.start) if seam.end is not None else None
    run(args, out, length)
    made = [folder / f"{n + 1:04d}.jpg" for n in numbers]
    made += [folder / "poster.jpg"] if here else []
    missing = [p.name for p in made if not p.exists()]
    if missing:
        raise MediaFailed(f"thumbnails {', '.join(missing)} were not made from chunk {seam.index}")
    return made


def sprite(out: Path, every: int, duration: float, run: Run) -> list[Path]:
    """`thumbnails/sprite.jpg` and `sprite.vtt` over the thumbnails already in out."""
    folder = out / "thumbnails"
    frames = sorted(folder.glob("[0-9][0-9][0-9][0-9].jpg"))
    if not frames:
        raise MediaFailed("no thumbnails were made")
    columns = min(10, len(frames))
    run(argv.sprite(len(frames), columns), out, None)
    info = probe(frames[0], restricted=False)
    assert info.video is not None
    w, h = info.video.width or 0, info.video.height or 0
    (folder / "sprite.vtt").write_text(
        manifests.sprite_vtt(len(frames), every, duration, w, h, columns)
    )
    return [folder / "sprite.jpg", folder / "sprite.vtt"]
