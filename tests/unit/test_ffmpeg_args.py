"""Preset data: the argv it produces and the options it refuses (no HTTP, no AWS)."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import InvalidInput
from chalicelib.presets.catalog import SEEDED
from chalicelib.presets.spec import parse_preset_data

ORIGINAL_720P = (
    '{"raw":["-vf scale=-2:720","-c:v libx264","-profile:v main","-level:v 4.0",'
    '"-x264opts scenecut=0:open_gop=0:min-keyint=72:keyint=72","-minrate 3000k",'
    '"-maxrate 3000k","-bufsize 3000k","-b:v 3000k","-y"]}'
)
ORIGINAL_VP9 = (
    '{"raw":["-vf scale=-2:720","-c:v libvpx-vp9","-level:v 4.0","-b:v 3000k",'
    '"-pix_fmt yuv420p","-f webm","-y"]}'
)


def test_seeded_presets_keep_the_original_servers_exact_options():
    by_name = {name: (data, output) for _, name, data, output in SEEDED}
    assert by_name["h264_main_720p_3000"] == (ORIGINAL_720P, "h264_main_720p_3000.mp4")
    assert by_name["webm_vp9_720p_3000"] == (ORIGINAL_VP9, "webm_vp9_3000_720.webm")
    assert len(SEEDED) == 5


def test_raw_preset_splits_on_spaces_like_the_original():
    spec = parse_preset_data(dict((n, d) for _, n, d, _ in SEEDED)["h264_baseline_360p_600"])
    assert spec.args == [
        "-vf", "scale=-2:360", "-c:v", "libx264", "-profile:v", "baseline", "-level:v", "3.0",
        "-x264opts", "scenecut=0:open_gop=0:min-keyint=72:keyint=72", "-minrate", "600k",
        "-maxrate", "600k", "-bufsize", "600k", "-b:v", "600k", "-y",
    ]  # fmt: skip


UI_TEMPLATE = {
    "format": {"container": "mp4", "clip": False},
    "video": {
        "codec": "libx264", "preset": "none", "pass": "1", "crf": 23, "bitrate": "3000k",
        "minrate": "3000k", "maxrate": "3000k", "bufsize": "3000k", "pixel_format": "auto",
        "frame_rate": "auto", "speed": "auto", "tune": "none", "profile": "none", "level": "none",
        "faststart": False, "size": "source", "width": "1080", "height": "1920",
        "format": "widescreen", "aspect": "auto", "scaling": "auto", "codec_options": "",
    },
    "audio": {"codec": "copy", "channel": "source", "quality": "auto", "sampleRate": "auto", "volume": "100"},
    "filter": {
        "deband": False, "deshake": False, "deflicker": False, "dejudder": False, "denoise": "none",
        "deinterlace": "none", "brightness": "0", "contrast": "1", "saturation": "0", "gamma": "0",
        "acontrast": "33",
    },
}  # fmt: skip


def test_structured_ui_template_gives_the_documented_command():
    spec = parse_preset_data(json.dumps(UI_TEMPLATE))
    assert spec.args == [
        "-c:v", "libx264", "-b:v", "3000k", "-minrate", "3000k", "-maxrate", "3000k",
        "-bufsize", "3000k", "-c:a", "copy", "-y",
    ]  # fmt: skip


def test_structured_fixes_the_original_bugs():
    doc = {"video": {"codec": "libx264", "size": "720", "format": "standard", "frame_rate": "auto",
                     "pixel_format": "yuv420p", "pass": "crf", "crf": 20}}  # fmt: skip
    spec = parse_preset_data(json.dumps(doc))
    assert "-r" not in spec.args  # frame_rate auto is never emitted as "-r auto"
    assert spec.args[spec.args.index("-vf") + 1] == "scale=-2:720"  # even width, no -1
    assert spec.args[spec.args.index("-crf") + 1] == "20"
    assert not any(a.endswith(",") for a in spec.args)  # omitted denoise/deinterlace add nothing


def test_structured_two_pass_is_flagged_not_mangled():
    spec = parse_preset_data(
        json.dumps({"video": {"codec": "libx264", "pass": "2", "bitrate": "1M"}})
    )
    assert spec.two_pass
    assert "NUL" not in " ".join(spec.args) and "&&" not in spec.args


@pytest.mark.parametrize(
    "raw, named",
    [
        (["-i /etc/passwd"], "-i"),
        (["-vf movie=/etc/passwd"], "movie"),
        (["-filter_complex amovie=x.wav"], "-filter_complex"),
        (["-attach x.ttf"], "-attach"),
        (["-dump_attachment:t x"], "-dump_attachment"),
        (["-report"], "-report"),
        (["-filter_script f.txt"], "-filter_script"),
        (["-/vf f.txt"], "-/vf"),
        (["-c:v libx264", "/etc/cron.d/x"], "/etc/cron.d/x"),
        (["-c:v libx264", "../../escape.mp4"], "../../escape.mp4"),
        (["-hls_segment_filename http://127.0.0.1/x"], "-hls_segment_filename"),
        (["-c:v libx264", "file:out.mp4"], "file:out.mp4"),
        (["-f tee"], "-f tee"),
        (
            ["-vf drawtext=fontfile=/usr/share/fonts/x.ttf"],
            "drawtext",
        ),
        (["-protocol_whitelist file,http"], "-protocol_whitelist"),
    ],
)
def test_unsafe_raw_options_are_refused_by_name(raw, named):
    with pytest.raises(InvalidInput) as refused:
        parse_preset_data(json.dumps({"raw": raw}))
    assert named in str(refused.value)


@pytest.mark.parametrize(
    "doc, message",
    [
        ("{not json", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ('{"raw": []}', "raw"),
        ('{"video": {"codec": "libx264", "colour": "red"}}', "unknown field 'video.colour'"),
        ('{"vidoe": {}}', "unknown field 'vidoe'"),
        ('{"video": {"speed": "2*PTS,movie=x"}}', "video.speed"),
        ('{"video": {"codec": "libx264 -i /etc/passwd"}}', "video.codec"),
        ('{"filter": {"denoise": "extreme"}}', "filter.denoise"),
    ],
)
def test_malformed_or_unknown_structured_data_is_refused(doc, message):
    with pytest.raises(InvalidInput) as refused:
        parse_preset_data(doc)
    assert message in str(refused.value)


def test_safe_relative_names_and_hls_options_are_accepted():
    spec = parse_preset_data(json.dumps({"raw": ["-c:v libx264", "-c:a aac", "-f hls",
                                                  "-hls_time 6", "-hls_playlist_type vod",
                                                  "-vf scale=iw/2:-2", "-y"]}))  # fmt: skip
    assert "hls" in spec.args
