"""ffmpeg argv for each step of a graph: split, chunk encode, audio, assemble, package, thumbnails.

Pure builders: paths in, argv lists out (no shell, no I/O). Every input is
read through the file protocol only, but a job's source read by range (`Loopback`:
http to the engine's own 127.0.0.1 proxy, by a stream copy); the runner adds the common prefix
(`-nostdin`, `-progress`, ...) and the fence.

Timestamps: pieces keep the source's own timestamps (`-copyts`), so a chunk is
trimmed by absolute time on the source's timeline, half a frame before each
seam: a frame belongs to exactly one chunk however the container rounds times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from chalicelib.media.sandbox import INPUT_FENCE, LOOPBACK_INPUT_FENCE, OUTPUT_FENCE
from chalicelib.presets.recipe import VideoRecipe

# Demuxers a source may be read with (the same list the probe uses).
SOURCE_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,mxf,asf,ogg,"
    "wav,mp3,aac,flac,h264,hevc,m4v,dv,gif,yuv4mpegpipe,ivf,w64,aiff"
)
PIECE_TAIL_SECONDS = 2.0  # copied past a seam: B-frames reorder, trim drops the rest
# ffmpeg's reads of a loopback source: a small TCP window, so it reads little ahead of what
# it demuxes and the proxy (whose S3 GETs follow the reader) fetches about that much.
REMOTE_READS = ("-recv_buffer_size", str(64 << 10))
_LOOPBACK = re.compile(r"http://127\.0\.0\.1:\d{1,5}/[\w-]{16,}")


@dataclass(frozen=True)
class Loopback:
    """The engine's own loopback URL of a job's source (chalicelib/store/source_proxy.py):
    the only input ffmpeg may read over the network, and only over plain HTTP to 127.0.0.1."""

    url: str

    def __post_init__(self) -> None:
        if not _LOOPBACK.fullmatch(self.url):
            raise ValueError("not the engine's loopback URL of a source")


Source = Path | Loopback


def source_input(source: Path | str | Loopback, *, start: float | None = None) -> list[str]:
    seek = ["-ss", f"{start:.6f}"] if start else []
    if isinstance(source, Loopback):
        return [*LOOPBACK_INPUT_FENCE, *REMOTE_READS, "-format_whitelist", SOURCE_DEMUXERS,
                *seek, "-i", source.url]  # fmt: skip
    return [*INPUT_FENCE, "-format_whitelist", SOURCE_DEMUXERS, *seek, "-i", f"file:{source}"]


def own_input(path: Path | str, *, copyts: bool = False, threads: str | None = None) -> list[str]:
    """An intermediate this system wrote itself (pieces, chunks, audio)."""
    decoder = ["-threads", threads] if threads else []
    return [*(["-copyts"] if copyts else []), *decoder, *INPUT_FENCE, "-i", f"file:{path}"]


def _threads(videos: list[VideoRecipe]) -> str | None:
    """The encoders' thread budget, given to the decoder as well: on one vCPU (threads 1)
    extra decoder threads only contend with the encoder for it."""
    counts = {v.args[i + 1] for v in videos for i, a in enumerate(v.args[:-1]) if a == "-threads"}
    return counts.pop() if len(counts) == 1 else None


def split_piece(
    source: Source, start: float, end: float | None, out: Path, source_start: float = 0.0
) -> list[str]:
    """Stream-copy the video from the keyframe at or before `start` to a little past `end`.

    An input seek with stream copy keeps the packets from the preceding
    keyframe; `-copyts` keeps the source's timestamps so the encode can trim
    by absolute time.
    """
    stop = [] if end is None else ["-to", f"{source_start + end + PIECE_TAIL_SECONDS:.6f}"]
    return [
        *source_input(source, start=start),
        *stop,
        "-map", "0:v:0", "-c", "copy", "-copyts", "-avoid_negative_ts", "disabled",
        "-f", "matroska", *OUTPUT_FENCE, f"file:{out}",
    ]  # fmt: skip


def indexed_copy(source: Path, out: Path) -> list[str]:
    """The source's video and first audio, stream-copied into Matroska, which has an index
    (cues) to seek by: a container with none (MPEG-TS) seeks by guessing, and a piece cut
    from it could start after its chunk's first frame."""
    return [
        *source_input(source),
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-copyts", "-avoid_negative_ts",
        "disabled", "-f", "matroska", *OUTPUT_FENCE, f"file:{out}",
    ]  # fmt: skip


def _seam(seconds: float, fps: Fraction, source_start: float) -> float:
    return source_start + seconds - float(1 / fps) / 2


def _trim(start: float, end: float | None, fps: Fraction, source_start: float) -> str:
    trim = "trim=start=" + f"{_seam(start, fps, source_start):.6f}" if start > 0 else "trim"
    if end is not None:
        trim += (":" if start > 0 else "=") + f"end={_seam(end, fps, source_start):.6f}"
    return trim


chunk_trim = _trim  # a measurement cuts its piece as the chunk's encode did


def encode_chunk(
    piece: Path,
    out: Path,
    video: VideoRecipe,
    *,
    start: float,
    end: float | None,
    fps: Fraction,
    source_start: float = 0.0,
) -> list[str]:
    """One rendition of one chunk, video only, frame-accurately trimmed; MP4 out."""
    chain = ",".join([_trim(start, end, fps, source_start), "setpts=PTS-STARTPTS", *video.filters])
    return [
        *own_input(piece, copyts=True, threads=_threads([video])),
        "-map", "0:v:0", "-vf", chain, *video.args, "-an", "-sn", "-dn",
        "-f", "mp4", *OUTPUT_FENCE, f"file:{out}",
    ]  # fmt: skip


def encode_chunk_renditions(
    piece: Path,
    outs: list[tuple[VideoRecipe, Path]],
    *,
    start: float,
    end: float | None,
    fps: Fraction,
    source_start: float = 0.0,
) -> list[str]:
    """Every rendition of one chunk from one decode: trimmed once, split, scaled per output.

    The graph is built here from the recipes' own per-frame filters (already judged by
    the allow-list), never from preset text; each output gets its rendition's options.
    """
    labels = [f"r{index}" for index in range(len(outs))]
    head = [_trim(start, end, fps, source_start), "setpts=PTS-STARTPTS"]
    graph = "[0:v:0]" + ",".join(head) + f",split={len(outs)}" + "".join(f"[{x}]" for x in labels)
    args: list[str] = []
    for label, (video, out) in zip(labels, outs, strict=True):
        graph += f";[{label}]" + (",".join(video.filters) or "null") + f"[{label}out]"
        args += ["-map", f"[{label}out]", *video.args, "-an", "-sn", "-dn",
                 "-f", "mp4", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip
    threads = _threads([video for video, _ in outs])
    return [*own_input(piece, copyts=True, threads=threads), "-filter_complex", graph, *args]


def encode_whole(source: Path, out: Path, video: VideoRecipe) -> list[str]:
    """One rendition of the whole timeline (a graph with one chunk), from the source itself."""
    chain = ",".join(video.filters) or "null"
    return [
        *source_input(source),
        "-map", "0:v:0", "-vf", chain, *video.args, "-an", "-sn", "-dn",
        "-f", "mp4", *OUTPUT_FENCE, f"file:{out}",
    ]  # fmt: skip


def extract_audio(source: Source, out: Path) -> list[str]:
    """The source's first audio stream, stream-copied (what the audio task downloads)."""
    return [*source_input(source), "-map", "0:a:0", "-c", "copy", "-vn",
            "-f", "matroska", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip


def encode_audio(source: Path, out: Path, audio_args: tuple[str, ...]) -> list[str]:
    """The whole job's audio, once (per-chunk audio drifts and leaves priming gaps)."""
    return [*own_input(source), "-map", "0:a:0", "-vn", *audio_args,
            "-f", "mp4", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip


def concat_list(chunks: list[Path]) -> str:
    """A concat demuxer script naming our own chunk files (never user input)."""
    return "ffconcat version 1.0\n" + "".join(f"file '{p.name}'\n" for p in chunks)


def join_video(list_file: Path, out: Path) -> list[str]:
    """Chunks back into one video stream, by stream copy."""
    return ["-protocol_whitelist", "file", "-f", "concat", "-safe", "1", "-i", f"file:{list_file}",
            "-map", "0:v:0", "-c", "copy", "-f", "mp4", *OUTPUT_FENCE, f"file:{out}"]  # fmt: skip


def mux(video: Path, audio: Path | None, out: Path, container: str = "mp4") -> list[str]:
    """Video and the job's audio into the progressive file; MP4s get faststart."""
    inputs = own_input(video) + (own_input(audio) if audio else [])
    maps = ["-map", "0:v:0"] + (["-map", "1:a:0"] if audio else [])
    fmt = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm"}.get(
        container, "mp4"
    )
    faststart = ["-movflags", "+faststart"] if fmt in ("mp4", "mov") else []
    return [*inputs, *maps, "-c", "copy", *faststart, "-f", fmt, *OUTPUT_FENCE, f"file:{out}"]


def package_hls(
    videos: list[tuple[str, Path]], audio: Path | None, segment_seconds: int, master_name: str
) -> list[str]:
    """CMAF (fMP4) segments and VOD media playlists per rendition, `<name>/index.m3u8`.

    Run in the output folder. The master playlist ffmpeg writes is only read back
    (for CODECS); `manifests.master_playlist` writes the published one.
    """
    inputs: list[str] = []
    maps: list[str] = []
    streams = []
    for index, (name, path) in enumerate(videos):
        inputs += own_input(path)
        maps += ["-map", f"{index}:v:0"]
        streams.append(f"v:{index},agroup:audio,name:{name}")
    trim: list[str] = []
    if audio is not None:
        inputs += own_input(audio)
        maps += ["-map", f"{len(videos)}:a:0"]
        streams.append("a:0,agroup:audio,name:audio")
        # AAC's priming frame sits before time 0 (the MP4's edit list hides it). Kept, the
        # muxer shifts every stream to start it at 0: the audio then runs one frame past
        # the video, in one more segment than the video, that starts after the MPD's end,
        # and the video gets an edit list DASH players ignore. Dropped, audio and video
        # start together at 0 and are cut alike.
        trim = ["-copypriorss:a", "0"]
    return [
        *inputs, *maps, "-c", "copy", *trim,
        "-f", "hls", "-hls_time", str(segment_seconds), "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "%v/seg_%05d.m4s",
        "-master_pl_name", master_name, "-var_stream_map", " ".join(streams), *OUTPUT_FENCE,
        "%v/index.m3u8",
    ]  # fmt: skip


def chunk_thumbnails(
    piece: Path,
    *,
    start: float,
    end: float | None,
    fps: Fraction,
    source_start: float,
    every: int,
    first: int,
    stop: int,
    width: int,
    poster: tuple[float, int] | None,
) -> list[str]:
    """Thumbnails `first`..`stop - 1` (picture n at n x every seconds) from one chunk's piece,
    and the poster when it falls in this chunk (its time and height).

    The chunk is trimmed exactly as its encode is; a picture is the first frame at or
    after its time (half a frame of tolerance), so neighbouring chunks never both make it.
    """
    half, frame = float(1 / fps) / 2, float(1 / fps)
    head = f"[0:v:0]{_trim(start, end, fps, source_start)},setpts=PTS-STARTPTS"
    branches, outputs = [], []
    if stop > first:
        t0, t1 = first * every - start, stop * every - start
        pick = f"lt(mod(t-{t0:.6f}+{half:.6f},{every}),{frame:.6f})*lt(t,{t1 - half:.6f})"
        branches.append(f"select='{pick}',scale={width}:-2[t]")
        outputs += ["-map", "[t]", "-fps_mode", "passthrough", "-start_number", str(first + 1),
                    "-q:v", "4", "-f", "image2", *OUTPUT_FENCE, "thumbnails/%04d.jpg"]  # fmt: skip
    if poster is not None:
        at, height = poster
        branches.append(f"select='gte(t,{at - start - half:.6f})',scale=-2:{height}[p]")
        outputs += ["-map", "[p]", "-frames:v", "1", "-q:v", "3", "-update", "1",
                    "-f", "image2", *OUTPUT_FENCE, "thumbnails/poster.jpg"]  # fmt: skip
    if len(branches) == 2:
        labels = "[a][b]"
        graph = f"{head},split=2{labels};[a]{branches[0]};[b]{branches[1]}"
    else:
        graph = f"{head},{branches[0]}"
    return [*own_input(piece, copyts=True), "-filter_complex", graph, *outputs]


def sprite(count: int, columns: int) -> list[str]:
    """`thumbnails/sprite.jpg`: the numbered thumbnails, in order, as one grid."""
    rows = max(1, -(-count // columns))
    return [*INPUT_FENCE, "-f", "image2", "-framerate", "1", "-start_number", "1",
            "-i", "file:thumbnails/%04d.jpg", "-vf", f"tile={columns}x{rows}", "-frames:v", "1",
            "-q:v", "4", "-update", "1", "-f", "image2", *OUTPUT_FENCE,
            "thumbnails/sprite.jpg"]  # fmt: skip
