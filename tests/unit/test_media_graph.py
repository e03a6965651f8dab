"""The graph's media steps with real ffmpeg: a chunked encode is a monolithic one in shape,
and a ladder packages into HLS and DASH that ffmpeg reads back."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from chalicelib.graph.plan import Kind, Limits, Source, plan
from chalicelib.media import argv, steps
from chalicelib.media.codecs import codec_string
from chalicelib.media.probe import ffmpeg_exe, probe
from chalicelib.presets.catalog import SEEDED
from chalicelib.presets.ladder import Ladder
from chalicelib.presets.recipe import Recipe, ladder_recipe, single_recipe
from chalicelib.presets.spec import parse_preset_data
from tests.media import generate

pytestmark = pytest.mark.slow
FPS = Fraction(30)
SECONDS = 12


@pytest.fixture(scope="module")
def mezzanine(tmp_path_factory) -> Path:
    """12 s of 640x360 at 30 fps with noise, a keyframe every 50 frames, and audio."""
    path = tmp_path_factory.mktemp("mezz") / "mezz.mp4"
    return generate(
        path,
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=7:allf=t:all_seed=42",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-g", "50",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
    )  # fmt: skip


def video_packets(path: Path) -> list[tuple[int, int]]:
    """(pts, duration) of every video packet, in presentation order (framecrc)."""
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split(",") for line in result.stdout.splitlines() if not line.startswith("#")]
    return sorted((int(r[2]), int(r[3])) for r in rows)


def audio_start(path: Path) -> float:
    """When the first audio packet plays, in seconds (framecrc's pts in the stream's timebase)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:a:0", "-c", "copy",
         "-f", "framecrc", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    num, den = re.search(r"#tb 0: (\d+)/(\d+)", result.stdout).groups()
    first = next(line for line in result.stdout.splitlines() if not line.startswith("#"))
    return int(first.split(",")[2]) * int(num) / int(den)


def keyframe_times(path: Path) -> list[float]:
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-skip_frame",
            "nokey",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-vf",
            "showinfo",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [round(float(t), 3) for t in re.findall(r"pts_time:([\d.]+)", result.stderr)]


def faststart(path: Path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def run_graph(source: Path, recipe: Recipe, work_dir: Path, limits: Limits) -> tuple:
    """What the tasks of a plan do, in order, on one machine (no queues)."""
    info = probe(source)
    src = Source(duration=info.duration, fps=FPS, height=info.video.height)
    p = plan(src, recipe.work(2.0), limits=limits)
    seams = [steps.Seam(c.index, c.start, c.end) for c in p.chunks]
    pieces = steps.split(source, seams, work_dir, steps.local_run)
    encoded: dict[str, list[Path]] = {v.name: [] for v in recipe.videos}
    for task in p.tasks:
        if task.kind != Kind.ENCODE:
            continue
        outs = [
            (recipe.video(name), work_dir / f"{task.id}-{name}.mp4") for name in task.renditions
        ]
        if len(outs) == 1:
            video, out = outs[0]
            steps.encode_chunk(pieces[task.chunk], out, video, seams[task.chunk], FPS,
                               steps.local_run)  # fmt: skip
        else:
            steps.encode_chunk_renditions(pieces[task.chunk], outs, seams[task.chunk], FPS,
                                          steps.local_run)  # fmt: skip
        for video, out in outs:
            encoded[video.name].append(out)
    audio = steps.encode_audio(source, work_dir / "audio.m4a", recipe, steps.local_run, None)
    joined = {
        name: steps.join(paths, work_dir / f"joined-{i}.mp4", steps.local_run)
        for i, (name, paths) in enumerate(encoded.items())
    }
    return p, joined, audio


def test_a_chunked_encode_has_the_shape_of_a_monolithic_one(mezzanine, tmp_path):
    _, _name, data, output = next(s for s in SEEDED if s[1] == "h264_baseline_360p_600")
    spec = parse_preset_data(data)
    mono = tmp_path / "mono.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(mezzanine),
                    *spec.args, str(mono)], check=True)  # fmt: skip
    recipe = single_recipe(spec.args, output, 360)
    # GOP 72 at 30 fps: 2.4 s chunks → 5 chunks in 12 s.
    p, joined, audio = run_graph(
        mezzanine, recipe, tmp_path, Limits(chunk_min_seconds=0, chunk_seconds=3)
    )
    assert len(p.chunks) == 5
    final = steps.assemble_single(joined[output], audio, tmp_path / output, "mp4", steps.local_run)

    a, b = probe(mono), probe(final)
    assert codec_string(final) == codec_string(mono) == "avc1.42c01e"  # profile and level
    assert (b.video.width, b.video.height) == (a.video.width, a.video.height)
    mono_packets, chunked_packets = video_packets(mono), video_packets(final)
    assert len(chunked_packets) == len(mono_packets) == SECONDS * 30
    assert abs(b.duration - a.duration) <= 1 / 30
    # Continuous timestamps: every frame starts where the previous one ended.
    assert all(
        later[0] - earlier[0] == earlier[1]
        for earlier, later in itertools.pairwise(chunked_packets)
    )
    assert keyframe_times(final) == keyframe_times(mono)
    assert faststart(final)
    assert b.audio is not None and b.audio.codec == "aac"
    assert abs(b.duration - a.duration) <= 1024 / 48000 + 1 / 30
    assert abs(audio_start(final) - audio_start(mono)) <= 1024 / 48000  # one AAC frame


LADDER = {
    "video": {"codec": "h264", "preset": "veryfast"},
    "renditions": [
        {"height": 480, "bitrate": "1000k", "profile": "main"},  # taller than the source: skipped
        {"height": 360, "bitrate": "600k", "profile": "main"},
        {"height": 240, "bitrate": "300k", "profile": "baseline"},
    ],
    "audio": {"codec": "aac", "bitrate": "96k", "channels": 2},
    "segment_seconds": 2,
    "packaging": ["hls", "dash", "mp4"],
    "thumbnails": {"every_seconds": 3, "width": 160, "sprite": True},
}


def decodes(target: str, stream: str) -> int:
    """Frames decoded from one stream of a playlist or manifest (file protocol only)."""
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-protocol_whitelist",
            "file",
            "-i",
            target,
            "-map",
            stream,
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return (
        int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1]) if "frame=" in result.stderr else -1
    )


def test_a_ladder_packages_into_hls_and_dash_that_ffmpeg_reads_back(mezzanine, tmp_path):
    ladder = Ladder.model_validate(LADDER)
    recipe = ladder_recipe(ladder, 360, FPS)
    assert [v.name for v in recipe.videos] == ["360p", "240p"]
    work_dir, out = tmp_path / "work", tmp_path / "out"
    work_dir.mkdir()
    p, joined, audio = run_graph(
        mezzanine, recipe, work_dir, Limits(chunk_min_seconds=0, chunk_seconds=4)
    )
    assert len(p.chunks) == 3
    videos = [(v, joined[v.name]) for v in recipe.videos]
    files = steps.assemble_ladder(videos, audio, recipe, FPS, out, steps.local_run)
    for c in p.chunks:  # each chunk's thumbnails task, from its own piece
        piece = work_dir / steps.piece_name(c.index)
        seam = steps.Seam(c.index, c.start, c.end)
        files += steps.chunk_thumbnails(
            piece, out, seam, FPS, 3, 160, SECONDS, 360, steps.local_run
        )
    files += steps.sprite(out, 3, SECONDS, steps.local_run)
    names = {f.relative_to(out).as_posix() for f in files}
    for expected in ("master.m3u8", "manifest.mpd", "360p.mp4", "240p.mp4", "360p/index.m3u8",
                     "240p/index.m3u8", "audio/index.m3u8", "thumbnails/poster.jpg",
                     "thumbnails/0001.jpg", "thumbnails/sprite.jpg", "thumbnails/sprite.vtt"):  # fmt: skip
        assert expected in names, sorted(names)
    assert not any(n.startswith("_") for n in names)
    assert "360p/init.mp4" in names and "audio/init.mp4" in names
    assert '#EXT-X-MAP:URI="init.mp4"' in (out / "240p" / "index.m3u8").read_text()

    master = (out / "master.m3u8").read_text()
    for height, codecs in ((360, "avc1.4d401e"), (240, "avc1.42c015")):
        line = next(x for x in master.splitlines() if f"x{height}," in x)
        assert f'CODECS="{codecs},mp4a.40.2"' in line
        for attribute in ("BANDWIDTH=", "AVERAGE-BANDWIDTH=", "FRAME-RATE=30.000"):
            assert attribute in line
    media = (out / "360p" / "index.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in media and "#EXT-X-ENDLIST" in media
    assert "#EXT-X-TARGETDURATION:2" in media

    # Every variant decodes, from the HLS master and from the DASH manifest.
    for stream in ("0:v:0", "0:v:1", "0:a:0"):
        assert decodes(str(out / "master.m3u8"), stream) != 0
        assert decodes(str(out / "manifest.mpd"), stream) != 0
    assert decodes(str(out / "manifest.mpd"), "0:v:0") == SECONDS * 30

    # Segment starts align: same durations in every media playlist, keyframes at the same times.
    durations = {
        r: re.findall(r"#EXTINF:([\d.]+)", (out / r / "index.m3u8").read_text())
        for r in ("360p", "240p")
    }
    assert durations["360p"] == durations["240p"] and len(durations["360p"]) == SECONDS // 2
    assert keyframe_times(out / "360p.mp4") == keyframe_times(out / "240p.mp4")
    assert keyframe_times(out / "360p.mp4") == [float(t) for t in range(0, SECONDS, 2)]

    # Picture n is the source's own frame at n x 3 s, whichever chunk made it.
    thumbs = sorted((out / "thumbnails").glob("[0-9]*.jpg"))
    assert [t.name for t in thumbs] == ["0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"]
    for n, thumb in enumerate(thumbs):
        reference = tmp_path / f"ref-{n}.jpg"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", str(n * 3),
                        "-i", str(mezzanine), "-frames:v", "1", "-vf", "scale=160:-2", "-q:v", "4",
                        str(reference)], check=True)  # fmt: skip
        assert thumb.read_bytes() == reference.read_bytes(), thumb.name
    assert probe(out / "thumbnails" / "poster.jpg", restricted=False).video.height == 360
    vtt = (out / "thumbnails" / "sprite.vtt").read_text()
    cues = re.findall(r"sprite\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", vtt)
    assert vtt.startswith("WEBVTT") and len(cues) == 4  # 0, 3, 6, 9 s
    assert cues[1] == ("160", "0", "160", "90")
    sprite = probe(out / "thumbnails" / "sprite.jpg", restricted=False)
    assert (sprite.video.width, sprite.video.height) == (640, 90)


def video_crcs(path: Path) -> list[str]:
    """Each video packet's pts, size and checksum: equal lists mean the same bitstream."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy",
         "-f", "framecrc", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line for line in result.stdout.splitlines() if not line.startswith("#")]


def test_a_chunks_renditions_from_one_decode_are_the_same_streams_as_one_at_a_time(
    mezzanine, tmp_path
):
    """Decoding once per chunk changes the work, never the output: the same packets."""
    ladder = Ladder.model_validate(LADDER | {"packaging": ["mp4"], "thumbnails": None})
    recipe = ladder_recipe(ladder, 360, FPS, threads=1)  # one thread: deterministic output
    limits = Limits(chunk_min_seconds=0, chunk_seconds=4)
    (tmp_path / "alone").mkdir()
    (tmp_path / "together").mkdir()
    alone, alone_joined, _ = run_graph(mezzanine, recipe, tmp_path / "alone", limits)
    together, together_joined, _ = run_graph(
        mezzanine, recipe, tmp_path / "together", replace(limits, concurrency=1)
    )
    assert not alone.decode_once and together.decode_once
    encodes = [t for t in together.tasks if t.kind == Kind.ENCODE]
    assert len(encodes) == len(together.chunks) == 3
    assert all(t.renditions == ("360p", "240p") for t in encodes)
    for name in ("360p", "240p"):
        crcs = video_crcs(together_joined[name])
        assert len(crcs) == SECONDS * 30
        assert crcs == video_crcs(alone_joined[name])


@pytest.mark.parametrize(
    "codec, preset, prefix", [("av1", "12", "av01.0."), ("h265", "ultrafast", "hvc1.1.")]
)
def test_hevc_and_av1_ladders_chunk_without_losing_a_frame(
    mezzanine, tmp_path, codec, preset, prefix
):
    ladder = Ladder.model_validate(
        LADDER
        | {
            "video": {"codec": codec, "preset": preset},
            "packaging": ["mp4"],
            "renditions": [{"height": 240, "crf": 40, "maxrate": "400k"}],
        }
    )
    recipe = ladder_recipe(ladder, 360, FPS, threads=1)
    p, joined, _audio = run_graph(
        mezzanine, recipe, tmp_path, Limits(chunk_min_seconds=0, chunk_seconds=4)
    )
    assert len(p.chunks) == 3
    assert len(video_packets(joined["240p"])) == SECONDS * 30
    assert codec_string(joined["240p"]).startswith(prefix)
    assert keyframe_times(joined["240p"])[:3] == [0.0, 2.0, 4.0]


def test_argv_never_reads_anything_but_files(tmp_path):
    video = single_recipe(["-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold",
                           "0"], "o.mp4", 360).videos[0]  # fmt: skip
    built = [
        argv.split_piece(tmp_path / "s.mp4", 4.0, 8.0, tmp_path / "p.mkv"),
        argv.encode_chunk(tmp_path / "p.mkv", tmp_path / "c.mp4", video, start=4, end=8, fps=FPS),
        argv.encode_chunk_renditions(
            tmp_path / "p.mkv",
            [(video, tmp_path / "a.mp4"), (video, tmp_path / "b.mp4")],
            start=4,
            end=8,
            fps=FPS,
        ),
        argv.join_video(tmp_path / "l.ffconcat", tmp_path / "j.mp4"),
        argv.chunk_thumbnails(
            tmp_path / "p.mkv",
            start=4,
            end=8,
            fps=FPS,
            source_start=0,
            every=2,
            first=2,
            stop=4,
            width=160,
            poster=(5.0, 360),
        ),
        argv.sprite(10, 5),
    ]
    for args in built:
        inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
        assert inputs and all(i.startswith("file:") for i in inputs), args
        assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert json.dumps(built)  # plain strings only
