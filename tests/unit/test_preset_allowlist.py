"""The preset allow-list: hostile presets are refused by name, real ladders pass (no HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.errors import InvalidInput
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.presets import allowlist, filtergraph
from chalicelib.presets.catalog import SEEDED
from chalicelib.presets.spec import parse_preset_data

ROOT = Path(__file__).resolve().parents[2]

# (family, raw strings as an operator would store them, text the refusal must contain)
HOSTILE = [
    # filters that open files, devices, sockets or command streams
    ("file filter", ["-vf movie=/etc/passwd"], "movie"),
    ("file filter", ["-af amovie=/proc/self/environ"], "amovie"),
    ("file filter", ["-vf sendcmd=f=/tmp/cmds"], "sendcmd"),
    ("file filter", ["-af asendcmd=filename=/tmp/cmds"], "asendcmd"),
    ("file filter", ["-vf zmq"], "zmq"),
    ("file filter", ["-af azmq=bind_address=tcp\\://0.0.0.0\\:5555"], "azmq"),
    ("file filter", ["-af ladspa=file=/usr/lib/ladspa/evil.so"], "ladspa"),
    ("file filter", ["-af lv2=plugin=http\\://x"], "lv2"),
    ("file filter", ["-vf frei0r=filter_name=/tmp/evil.so"], "frei0r"),
    ("file filter", ["-vf subtitles=filename=/etc/passwd"], "subtitles"),
    ("file filter", ["-vf ass=/etc/passwd"], "ass"),
    ("file filter", ["-vf drawtext=textfile=/proc/self/environ"], "drawtext"),
    ("file filter", ["-vf drawtext=fontfile=/etc/passwd:text=x"], "drawtext"),
    ("file filter", ["-vf lut3d=file=/etc/passwd"], "lut3d"),
    ("file filter", ["-vf haldclut"], "haldclut"),
    ("file filter", ["-vf vidstabdetect=result=/tmp/x.trf"], "vidstabdetect"),
    ("file filter", ["-vf signature=filename=/tmp/sig"], "signature"),
    ("file filter", ["-af arnndn=m=/etc/passwd"], "arnndn"),
    ("file filter", ["-vf dnn_processing=model=/tmp/m"], "dnn_processing"),
    ("file filter", ["-vf ocr=datapath=/tmp"], "ocr"),
    ("file filter", ["-vf scale=-2:360,movie=x"], "movie"),
    ("file parameter", ["-vf deshake=filename=/tmp/motion.log"], "deshake filename"),
    ("file parameter", ["-af loudnorm=stats_file=/tmp/stats.json"], "loudnorm stats_file"),
    ("file parameter", ["-vf deshake=0:0:-1:-1:16:16:0:8:1:0:/tmp/log"], "too many unnamed"),
    ("file parameter", ["-vf deshake=opencl=1"], "deshake opencl"),
    ("file parameter", ["-vf scale=-2:360:/tmp/x"], "scale"),
    ("device", ["-init_hw_device vaapi=va:/dev/dri/renderD128"], "-init_hw_device"),
    ("device", ["-filter_hw_device va"], "-filter_hw_device"),
    ("device", ["-hwaccel vaapi"], "-hwaccel"),
    ("device", ["-vf hwupload"], "hwupload"),
    ("device", ["-f v4l2"], "-f v4l2"),
    ("device", ["-f alsa"], "-f alsa"),
    ("device", ["-f sdl"], "-f sdl"),
    ("device", ["-f fbdev"], "-f fbdev"),
    # options that write (or read) side files
    ("side file", ["-vstats_file /tmp/vstats"], "-vstats_file"),
    ("side file", ["-vstats"], "-vstats"),
    ("side file", ["-passlogfile /tmp/pass"], "-passlogfile"),
    ("side file", ["-f hls", "-hls_segment_filename /tmp/seg%d.ts"], "-hls_segment_filename"),
    ("side file", ["-f hls", "-hls_key_info_file /tmp/key"], "-hls_key_info_file"),
    ("side file", ["-f hls", "-master_pl_name ../master.m3u8"], "-master_pl_name"),
    ("side file", ["-f hls", "-hls_fmp4_init_filename /tmp/init.mp4"], "-hls_fmp4_init_filename"),
    ("side file", ["-f hls", "-hls_flags +append_list"], "-hls_flags"),
    ("side file", ["-f hls", "-hls_flags delete_segments"], "-hls_flags"),
    ("side file", ["-f dash", "-init_seg_name ../init.m4s"], "-init_seg_name"),
    ("side file", ["-f dash", "-format_options movflags=x"], "-format_options"),
    ("side file", ["-sdp_file /tmp/x.sdp"], "-sdp_file"),
    ("side file", ["-f hls", "-strftime 1", "-strftime_mkdir 1"], "-strftime"),
    ("side file", ["-f image2", "-strftime 1"], "-strftime"),
    ("side file", ["-f dash", "-hls_master_name ../m.m3u8"], "-hls_master_name"),
    ("side file", ["-f hls", "-var_stream_map v:0"], "-var_stream_map"),
    ("side file", ["-progress /tmp/progress.txt"], "-progress"),
    ("side file", ["-fpre /etc/passwd"], "-fpre"),
    ("side file", ["-report"], "-report"),
    ("side file", ["-dump_attachment:t out.ttf"], "-dump_attachment:t"),
    ("side file", ["-attach /etc/passwd"], "-attach"),
    ("side file", ["-f tee"], "-f tee"),
    ("side file", ["-f segment"], "-f segment"),
    ("side file", ["-stats_enc_pre /tmp/x"], "-stats_enc_pre"),
    # protocol and URL outputs, extra inputs
    ("protocol", ["-i /etc/passwd"], "-i"),
    ("protocol", ["-i http://169.254.169.254/latest/meta-data/"], "-i"),
    ("protocol", ["-c:v libx264", "udp://10.0.0.1:1234"], "udp://10.0.0.1:1234"),
    ("protocol", ["-f mpegts", "tcp://10.0.0.1:9"], "tcp://10.0.0.1:9"),
    ("protocol", ["-c:v libx264", "file:/etc/cron.d/x"], "file:/etc/cron.d/x"),
    ("protocol", ["-c:v libx264", "../../escape.mp4"], "../../escape.mp4"),
    ("protocol", ["-protocol_whitelist file,http,tcp"], "-protocol_whitelist"),
    ("protocol", ["-f hls", "-hls_base_url http://evil/"], "-hls_base_url"),
    ("protocol", ["-method PUT"], "-method"),
    ("protocol", ["-f rtp"], "-f rtp"),
    ("protocol", ["-f image2", "/tmp/x%d.png"], "/tmp/x%d.png"),
    ("protocol", ["-metadata title=x", "-"], "'-'"),
    # quoting, escaping and whitespace disguises
    ("disguise", ["-vf mov\\ie=/etc/passwd"], "movie"),
    ("disguise", ["-vf 'movie'=/etc/passwd"], "movie"),
    ("disguise", ["-vf scale=-2:360,\tmovie=x"], "movie"),
    ("disguise", ["-vf scale=-2:360,\nmovie=x"], "movie"),
    ("disguise", ["-vf \tmovie=x"], "movie"),
    ("disguise", ["-vf [in]movie=x[out]"], "movie"),
    ("disguise", ["-vf scale=-2:360[a];[a]movie=x"], "-vf"),
    ("disguise", ["-vf scale=-2:720\\,movie=x"], "scale h"),
    ("disguise", ["-vf 'scale=-2:720',movie=x"], "scale=-2:720"),
    ("disguise", ["-vf sc'a'le=-2:720,mo''vie=x"], "movie"),
    ("disguise", ["-vf scale@a=-2:720,movie@b=x"], "movie"),
    ("disguise", ["-vf deshake=file\\name=/tmp/x"], "deshake"),
    ("disguise", ["-af loudnorm=I=-16:stats_f\\ile=/tmp/x"], "loudnorm"),
    ("disguise", ["-vf scale=w=1280:h=-2:/vf=/tmp/x"], "scale"),
    ("disguise", ["-x264-params st\\ats=/tmp/x"], "stats"),
    ("disguise", ["-x264-params 'stats'=/tmp/x"], "stats"),
    ("disguise", ["-x264opts keyint=72:'qpfile'=/etc/passwd"], "qpfile"),
    ("disguise", ["-vf sws_flags=bicubic;movie=x"], "-vf"),
    # option-name spellings
    ("spelling", ["-filter:v movie=x"], "movie"),
    ("spelling", ["-filter:v:0 movie=x"], "movie"),
    ("spelling", ["-filter:a:1 amovie=x"], "amovie"),
    ("spelling", ["-filter_complex movie=x"], "-filter_complex"),
    ("spelling", ["-lavfi movie=x"], "-lavfi"),
    ("spelling", ["-filter movie=x"], "-filter"),
    ("spelling", ["-af amovie=x"], "amovie"),
    ("spelling", ["-vf anull"], "anull"),
    ("spelling", ["-filter_script:v /tmp/f"], "-filter_script:v"),
    ("spelling", ["-filter_complex_script /tmp/f"], "-filter_complex_script"),
    ("spelling", ["-/vf /tmp/f"], "-/vf"),
    ("spelling", ["-/filter:v /tmp/f"], "-/filter:v"),
    ("spelling", ["-vf:0 movie=x"], "-vf:0"),
    ("spelling", ["-c:v:0 libx264", "-filter:v:0 scale=-2:360,amovie=x"], "amovie"),
    # encoder private parameter strings
    ("encoder params", ["-x264-params stats=/tmp/x.log"], "stats"),
    ("encoder params", ["-x264opts dump-yuv=/tmp/x.yuv"], "dump-yuv"),
    ("encoder params", ["-x264opts dump_yuv=/tmp/x.yuv"], "dump_yuv"),
    ("encoder params", ["-x264-params qpfile=/etc/passwd"], "qpfile"),
    ("encoder params", ["-x264-params keyint=72:stats=/tmp/x"], "stats"),
    ("encoder params", ["-x264-params nostats=1"], "nostats"),
    ("encoder params", ["-x264-params pass=1"], "pass"),
    ("encoder params", ["-x264-params threads=1000"], "threads"),
    ("encoder params", ["-x265-params csv=/tmp/x.csv"], "csv"),
    ("encoder params", ["-x265-params analysis-save=/tmp/a"], "analysis-save"),
    ("encoder params", ["-x265-params analysis-load=/etc/passwd"], "analysis-load"),
    ("encoder params", ["-x265-params zonefile=/tmp/z"], "zonefile"),
    ("encoder params", ["-x265-params recon=/tmp/r.yuv"], "recon"),
    ("encoder params", ["-x265-params dolby-vision-rpu=/etc/passwd"], "dolby-vision-rpu"),
    ("encoder params", ["-svtav1-params fgs-table=/etc/passwd"], "fgs-table"),
    ("encoder params", ["-svtav1-params stats=/tmp/s"], "stats"),
    ("encoder params", ["-aom-params x=1"], "-aom-params"),
    ("encoder params", ["-c:v libxvid"], "-c:v libxvid"),
    # resource exhaustion and duration extension
    ("resources", ["-vf loop=loop=-1:size=1"], "loop"),
    ("resources", ["-af aloop=loop=-1:size=2000000000"], "aloop"),
    ("resources", ["-vf tpad=stop_duration=3600"], "tpad"),
    ("resources", ["-af apad=whole_dur=3600"], "apad"),
    ("resources", ["-stream_loop -1"], "-stream_loop"),
    ("resources", ["-threads 1000"], "-threads 1000"),
    ("resources", ["-filter_threads 1000"], "-filter_threads 1000"),
    ("resources", ["-s 100000x100000"], "-s 100000x100000"),
    ("resources", ["-vf scale=100000:100000"], "scale w"),
    ("resources", ["-vf scale=7681:-2"], "scale w"),
    ("resources", ["-vf scale=-2:4321"], "scale h"),
    ("resources", ["-vf scale=iw*100:-2"], "scale w"),
    ("resources", ["-vf scale=w=iw/0:h=1"], "scale w"),
    ("resources", ["-vf scale=w=iw/(ih-ih):h=1"], "scale w"),
    ("resources", ["-vf pad=iw*10:ih*10"], "pad w"),
    ("resources", ["-r 100000"], "-r 100000"),
    ("resources", ["-vf fps=10000"], "fps fps"),
    ("resources", ["-vf fps=fps=24:start_time=-1000"], "fps start_time"),
    ("resources", ["-vf setpts=10*PTS"], "setpts"),
    ("resources", ["-vf setpts=PTS*10"], "setpts"),
    ("resources", ["-af asetpts=N*1000"], "asetpts"),
    ("resources", ["-vf nlmeans=r=99"], "nlmeans r"),
    ("resources", ["-vf eq=contrast=1:eval=frame:gamma=while(1\\,1)"], "eq gamma"),
    ("resources", ["-frames:v 0"], "-frames:v 0"),
    ("resources", [f"-vf {','.join(['hflip'] * 17)}"], "at most 16"),
]


@pytest.mark.parametrize(
    "raw, named", [case[1:] for case in HOSTILE], ids=[f"{c[0]}:{c[1][-1]}" for c in HOSTILE]
)
def test_hostile_preset_is_refused_naming_what_is_not_allowed(raw, named):
    with pytest.raises(InvalidInput) as refused:
        parse_preset_data(json.dumps({"raw": raw}))
    message = str(refused.value)
    assert named in message
    assert "not allowed" in message
    assert refused.value.status == 400


def test_the_hostile_table_covers_every_family_with_over_sixty_cases():
    families = {case[0] for case in HOSTILE}
    assert len(HOSTILE) >= 60
    assert {"file filter", "device", "side file", "protocol", "disguise", "spelling",
            "encoder params", "resources"} <= families  # fmt: skip


@pytest.mark.parametrize("name, data", [(name, data) for _, name, data, _ in SEEDED])
def test_every_seeded_preset_passes_with_its_options_unchanged(name, data):
    spec = parse_preset_data(data)
    raw = [part for item in json.loads(data)["raw"] for part in item.split(" ") if part]
    assert spec.args == raw


LADDER = [
    "-vf scale=w='min(1280,iw)':h=-2:flags=lanczos,setsar=1,format=yuv420p",
    "-c:v libx264", "-preset veryfast", "-profile:v high", "-level 4.1", "-crf 21",
    "-maxrate 4500k", "-bufsize 9M", "-g 48", "-keyint_min 48", "-sc_threshold 0",
    "-force_key_frames expr:gte(t,n_forced*2)", "-x264-params nal-hrd=vbr:no-scenecut=1",
    "-pix_fmt yuv420p", "-c:a aac", "-b:a 128k", "-ac 2", "-ar 48000",
    "-af aresample=48000,loudnorm=I=-16:TP=-1.5:LRA=11", "-movflags +faststart",
    "-map 0:v:0", "-map 0:a:0?", "-metadata:s:a:0 language=eng", "-threads 8", "-y",
]  # fmt: skip


def test_a_production_ladder_rendition_passes_in_canonical_form():
    spec = parse_preset_data(json.dumps({"raw": LADDER}))
    chain = spec.args[spec.args.index("-vf") + 1]
    assert chain == "scale=w=min(1280\\,iw):h=-2:flags=lanczos,setsar=1,format=yuv420p"
    assert "-x264-params" in spec.args and "nal-hrd=vbr:no-scenecut=1" in spec.args


def test_hls_and_dash_outputs_pass_without_naming_side_files():
    for raw in (
        ["-c:v libx264", "-f hls", "-hls_time 6", "-hls_playlist_type vod",
         "-hls_segment_type fmp4", "-hls_flags +independent_segments", "-y"],
        ["-c:v libx264", "-f dash", "-seg_duration 4", "-use_template 1", "-use_timeline 1",
         "-hls_playlist 1", "-y"],
        ["-c:v libx265", "-x265-params keyint=48:min-keyint=48:no-open-gop=1", "-tag:v hvc1"],
        ["-c:v libsvtav1", "-svtav1-params preset=8:tune=0:film-grain=8", "-crf 30"],
        ["-c:v libvpx-vp9", "-deadline good", "-cpu-used 2", "-row-mt 1", "-b:v 0", "-crf 32"],
    ):  # fmt: skip
        parse_preset_data(json.dumps({"raw": raw}))


STRUCTURED = {
    "format": {"container": "mp4", "clip": True, "startTime": "1", "stopTime": "00:00:09"},
    "video": {"codec": "libx264", "preset": "slow", "pass": "crf", "crf": 20, "pixel_format": "yuv420p",
              "frame_rate": "30", "speed": "0.5*PTS", "tune": "film", "profile": "high", "level": "4.1",
              "faststart": True, "size": "720", "format": "standard", "scaling": "lanczos",
              "codec_options": "keyint=60:min-keyint=60"},
    "audio": {"codec": "aac", "channel": "2", "quality": "128k", "sample_rate": "48000", "volume": "80"},
    "filter": {"deband": True, "deshake": True, "deflicker": True, "dejudder": True, "denoise": "heavy",
               "deinterlace": "field", "brightness": "0.1", "contrast": "1.2", "saturation": "1.1",
               "gamma": "1.1", "acontrast": "50"},
}  # fmt: skip


def test_every_documented_structured_field_still_validates():
    spec = parse_preset_data(json.dumps(STRUCTURED))
    chain = spec.args[spec.args.index("-vf") + 1]
    assert chain.startswith("scale=-2:720:flags=lanczos,setpts=0.5*PTS,deband,deshake")
    assert "yadif=1:-1:0" in chain and "eq=contrast=1.2" in chain
    assert spec.args[spec.args.index("-af") + 1] == "volume=0.8,acontrast=0.5"
    for denoise in ("light", "medium"):
        parse_preset_data(json.dumps({"filter": {"denoise": denoise}}))


def test_structured_fields_are_bounded_by_the_same_table():
    too_big = {"video": {"codec": "libx264", "size": "custom", "width": "9000", "height": "100"}}
    with pytest.raises(InvalidInput, match="scale w"):
        parse_preset_data(json.dumps(too_big))
    with pytest.raises(InvalidInput, match="-c:v libxvid"):
        parse_preset_data(json.dumps({"video": {"codec": "libxvid"}}))
    with pytest.raises(InvalidInput, match="stats"):
        parse_preset_data(json.dumps({"video": {"codec": "libx264", "codec_options": "stats=x"}}))


def test_the_parser_undoes_quotes_and_escapes_as_ffmpeg_does():
    [[first, second]] = filtergraph.parse(" [in] sc'a'le = 'w=1:h=2' \\, x [out] , hflip ")
    assert (first.name, first.inputs, first.outputs) == ("scale", ["in"], ["out"])
    assert first.args == "w=1:h=2 , x"
    assert first.options() == [("w", "1"), ("h", "2 , x")]
    assert second.name == "hflip"
    assert filtergraph.split_options("w=a\\:b:'c:d'") == [("w", "a:b"), (None, "c:d")]


def test_single_option_api_for_system_built_argv():
    assert allowlist.check_option("-c:v", "libx264") == "libx264"
    assert allowlist.check_option("-y") is None
    assert allowlist.check_filter_chain("scale=-2:720", "video") == "scale=-2:720"
    with pytest.raises(InvalidInput, match="-hls_segment_filename"):
        allowlist.check_option("-hls_segment_filename", "seg%d.ts")
    with pytest.raises(InvalidInput, match="filter 'scale' is not on the allow-list"):
        allowlist.check_filter_chain("scale=-2:720", "audio")


@pytest.mark.slow
def test_ffmpeg_accepts_the_canonical_form_of_every_filter_in_the_table(tmp_path):
    video = [
        "scale=w='min(320,iw)':h=-2:flags=bicubic,crop=w=iw-2:h=ih-2:x=1:y=1,"
        "pad=w=320:h=240:x=(ow-iw)/2:y=(oh-ih)/2:color=black,fps=12,format=yuv420p,setsar=1,setdar=4/3",
        "yadif=0:-1:0,bwdif=1,hqdn3d=2,nlmeans=s=2:p=3:r=5,removegrain=22,"
        "vaguedenoiser=threshold=3:method=soft:nsteps=5,unsharp=5:5:1,transpose=clock",
        "hflip,vflip,deband,deshake,deflicker,dejudder,eq=contrast=1.1,setpts=PTS-STARTPTS",
    ]
    chains = [allowlist.check_filter_chain(part, "video") for part in video]
    assert chains[0].startswith("scale=w=min(320\\,iw):h=-2")
    audio = allowlist.check_filter_chain(
        "volume=0.5,loudnorm=I=-16,aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
        "acontrast=0.3,asetpts=PTS-STARTPTS",
        "audio",
    )
    covered = {f.name for chain in [*chains, audio] for f in filtergraph.parse(chain)[0]}
    assert covered == set(allowlist.FILTERS)
    for flag, chain in [*(("-vf", c) for c in chains), ("-af", audio)]:
        result = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
             "testsrc2=s=64x48:d=0.3", "-f", "lavfi", "-i", "sine=d=0.3", flag, chain,
             "-f", "null", "-"],
            capture_output=True, text=True, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, (chain, result.stderr)
        kind = "video" if flag == "-vf" else "audio"
        assert chain == allowlist.check_filter_chain(chain, kind)  # canonical is a fixed point


def test_the_docs_list_the_allow_list_generated_from_the_table():
    readme = (ROOT / "docs" / "reference" / "allowlist.md").read_text()
    begin, end = "<!-- allowlist:begin -->\n", "<!-- allowlist:end -->"
    assert begin in readme and end in readme, "the docs lack the generated allow-list section"
    section = readme.split(begin, 1)[1].split(end, 1)[0]
    generated = subprocess.run(
        [sys.executable, "-m", "chalicelib.presets.allowlist", "--markdown"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert section == generated, "regenerate: python -m chalicelib.presets.allowlist --markdown"


@pytest.mark.slow
@pytest.mark.parametrize(
    "graph",
    ["mov\\ie=missing.mp4", "'movie'=missing.mp4", "\tmovie=missing.mp4",
     "sc'a'le=-2:20,mo''vie=missing.mp4", "scale@a=-2:20,movie@b=missing.mp4"],
)  # fmt: skip
def test_ffmpeg_finds_the_same_filters_in_a_disguised_graph_as_the_parser(tmp_path, graph):
    [chain] = filtergraph.parse(graph)
    index, hidden = next((i, f) for i, f in enumerate(chain) if f.name == "movie")
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc=s=32x24:d=0.1", "-vf", graph, "-f", "null", "-"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    label = f"movie@{hidden.instance}" if hidden.instance else f"Parsed_movie_{index}"
    assert f"[{label} @" in result.stderr, result.stderr  # ffmpeg opened a movie filter there
    assert hidden.options() == [(None, "missing.mp4")]


def test_encoder_switches_are_written_so_ffmpeg_reads_them_as_switches():
    assert allowlist.check_param_string("x264-params", "open-gop:keyint=48") == (
        "open-gop=1:keyint=48"
    )
    assert allowlist.check_param_string("x264opts", "no-scenecut:keyint=48") == (
        "no-scenecut:keyint=48"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "encoder, option, value",
    [("libx264", "x264-params", "open-gop:keyint=48:no-scenecut=1:nal-hrd=vbr"),
     ("libx264", "x264opts", "scenecut=0:open_gop=0:min-keyint=72:keyint=72"),
     ("libx265", "x265-params", "keyint=48:min-keyint=48:no-open-gop=1:log-level=error"),
     ("libsvtav1", "svtav1-params", "preset=12:tune=0:keyint=48")],
)  # fmt: skip
def test_ffmpeg_accepts_canonical_encoder_parameters(tmp_path, encoder, option, value):
    canonical = allowlist.check_param_string(option, value)
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc=s=64x48:d=0.2", "-c:v", encoder, f"-{option}", canonical, "-f", "null", "-"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
