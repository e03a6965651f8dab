"""The preset allow-list: every output option, encoder parameter and filter a preset may use.

Presets are untrusted (DESIGN.md, "Trust model for presets"): an option is accepted
only if it is in these tables and its value matches the grammar next to it. Each entry
touches nothing but the job's own streams and output; whatever is not here is refused
with a 400 that names it and says what is allowed. The docs' allow-list
(docs/reference/allowlist.md) is printed from the same tables
(`python -m chalicelib.presets.allowlist --markdown`).

For callers that build argv themselves (ladder presets): `check_option` judges one
option and value, `check_filter_chain` one `-vf`/`-af` chain, `check_args` a whole
argv; each returns the canonical form to pass to ffmpeg.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.errors import InvalidInput
from chalicelib.presets import filtergraph
from chalicelib.presets.grammar import (
    MAX_FPS,
    MAX_HEIGHT,
    MAX_THREADS,
    MAX_WIDTH,
    Grammar,
    bitrate,
    boolean,
    either,
    expression,
    flags,
    frame_rate,
    frame_size,
    integer,
    listed,
    number,
    one_of,
    ratio,
    slug,
    timestamp,
)

README_SECTION = "Preset allow-list"
MAX_FILTERS_PER_CHAIN = 16


class Refused(InvalidInput):
    """A preset option, encoder parameter or filter that is not on the allow-list."""


def _refuse(what: str, why: str) -> Refused:
    return Refused(f"preset option {what!r} is not allowed: {why}")


# --- value grammars shared by several entries ---------------------------------------------

# fmt: off
VIDEO_ENCODERS = ("libx264", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1", "mpeg4",
                  "mjpeg", "png", "copy")
AUDIO_ENCODERS = ("aac", "libopus", "libmp3lame", "libvorbis", "flac", "alac", "ac3", "eac3",
                  "pcm_s16le", "pcm_s24le", "copy")
SUBTITLE_ENCODERS = ("mov_text", "webvtt", "copy")
MUXERS = ("mp4", "mov", "ipod", "webm", "matroska", "mpegts", "hls", "dash", "mp3", "adts", "ogg",
          "opus", "flac", "wav", "image2", "null")
PIXEL_FORMATS = ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le",
                 "yuv444p10le", "yuv420p12le", "nv12", "p010le", "gray", "gray10le", "rgb24",
                 "rgba", "yuva420p")
SAMPLE_RATES = ("8000", "11025", "12000", "16000", "22050", "24000", "32000", "44100", "48000",
                "88200", "96000", "192000")
SAMPLE_FORMATS = ("u8", "s16", "s32", "flt", "dbl", "u8p", "s16p", "s32p", "fltp", "dblp")
COLOR_PRIMARIES = ("bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020",
                   "smpte428", "smpte431", "smpte432", "unknown")
COLOR_TRC = ("bt709", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear", "iec61966-2-1",
             "bt2020-10", "bt2020-12", "smpte2084", "arib-std-b67", "unknown")
COLORSPACES = ("bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco", "bt2020nc", "bt2020c",
               "unknown")
# fmt: on
LEVEL = Grammar(
    "a codec level such as 3.0, 4.1 or 41",
    lambda v: bool(re.fullmatch(r"[1-7](\.[0-3])?|[1-7][0-3]|1b", v)),
)
# fmt: off
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
# fmt: on
# fmt: off
TUNES = ("film", "animation", "grain", "stillimage", "fastdecode", "zerolatency", "psnr", "ssim",
         "0", "1", "2")
# fmt: on
# fmt: off
VIDEO_PROFILES = ("baseline", "constrained_baseline", "main", "high", "high10", "high422",
                  "high444", "main10", "main12", "main422-10", "main444-8", "mainstillpicture",
                  "0", "1", "2", "3")
# fmt: on
VIDEO_BITRATE = bitrate(200e6)
AUDIO_BITRATE = bitrate(1.5e6)
TIME_LIST = Grammar(
    "a time in seconds or a comma-separated list of them",
    lambda v: bool(re.fullmatch(r"\d{1,6}(\.\d{1,6})?(,\d{1,6}(\.\d{1,6})?){0,999}", v)),
)
KEYFRAME_NAMES = {
    "t": (0.0, 1e7),
    "n": (0.0, 1e9),
    "n_forced": (0.0, 1e9),
    "prev_forced_n": (0.0, 1e9),
    "prev_forced_t": (0.0, 1e7),
}
FORCE_KEY_FRAMES = Grammar(
    "source, a list of times, or expr: with an expression of t, n, n_forced, prev_forced_t",
    lambda v: (
        v == "source"
        or TIME_LIST(v)
        or (v.startswith("expr:") and expression(KEYFRAME_NAMES, -1e12, 1e12, "")(v[5:]))
    ),
)
MAP = Grammar(
    "a stream of the job's input such as 0:v:0, 0:a?, or -0:s to drop",
    lambda v: bool(re.fullmatch(r"-?0(:[vVasdt](:\d{1,2})?|:\d{1,2})?\??", v)),
)
METADATA = Grammar(
    "key=value (letters, digits and . , @ + - _ ( ) in the value)",
    lambda v: bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]{0,63}=[A-Za-z0-9_.,@+\-()]{0,200}", v)),
)
ASPECT = Grammar(
    "an aspect ratio such as 16:9, 16/9 or 1.7778",
    lambda v: bool(re.fullmatch(r"\d{1,4}:\d{1,4}", v)) or ratio(10)(v),
)


# --- encoder private parameter strings (-x264-params and friends) -------------------------


@dataclass(frozen=True)
class ParamTable:
    option: str
    keys: dict[str, Grammar]
    booleans: frozenset[str] = frozenset()
    separator_note: str = "key=value pairs separated by ':'"
    # x264 and x265 read `no-foo` and `nofoo` as foo=0 and `foo_bar` as foo-bar.
    no_prefix: bool = True
    # Numeric keys the encoders also accept as `no-<key>` (meaning: turn it off).
    negatable: frozenset[str] = frozenset({"scenecut", "deblock", "weightp", "psy-rd"})


_BOOL = boolean()
_PAIR = Grammar(
    "two numbers such as -1,-1", lambda v: bool(re.fullmatch(r"-?\d+(\.\d+)?,-?\d+(\.\d+)?", v))
)
_KBPS = integer(1, 200_000)
_X26X_COMMON: dict[str, Grammar] = {
    "keyint": either(integer(1, 1000), one_of("infinite")),
    "min-keyint": integer(1, 1000),
    "keyint-min": integer(1, 1000),
    "scenecut": integer(0, 100),
    "bframes": integer(0, 16),
    "b-adapt": integer(0, 2),
    "ref": integer(1, 16),
    "rc-lookahead": integer(0, 250),
    "crf": number(0, 51),
    "qp": integer(0, 69),
    "qpmin": integer(0, 69),
    "qpmax": integer(0, 69),
    "bitrate": _KBPS,
    "vbv-maxrate": _KBPS,
    "vbv-bufsize": _KBPS,
    "vbv-init": number(0, 1),
    "aq-mode": integer(0, 4),
    "aq-strength": number(0, 3),
    "deblock": _PAIR,
    "subme": integer(0, 11),
    "merange": integer(4, 64),
    "level": LEVEL,
    "profile": one_of(*VIDEO_PROFILES),
    "preset": one_of(*X264_PRESETS),
    "tune": one_of(*TUNES),
    "colorprim": one_of(*COLOR_PRIMARIES),
    "transfer": one_of(*COLOR_TRC),
    "colormatrix": one_of(*COLORSPACES, "bt2020nc"),
    "range": one_of("tv", "pc", "auto", "limited", "full"),
    "threads": integer(0, MAX_THREADS),
    "lookahead-threads": integer(0, MAX_THREADS),
}
# fmt: off
_X26X_BOOLEANS = ("open-gop", "repeat-headers", "aud", "annexb", "weightb", "intra-refresh", "psy",
                  "mbtree", "cabac", "8x8dct", "fast-pskip", "dct-decimate", "mixed-refs",
                  "chroma-me", "interlaced", "tff", "bff", "fake-interlaced", "sliced-threads",
                  "force-cfr", "stitchable", "filler", "cutree", "hrd", "info", "sao", "wpp",
                  "rect", "amp", "strong-intra-smoothing", "limit-modes", "hdr10", "hdr10-opt",
                  "hdr-opt", "idr-recovery-sei", "b-intra", "tskip", "hist-scenecut", "high-tier",
                  "b-pyramid", "cu-lossless", "constrained-intra", "temporal-layers",
                  "allow-non-conformance")
# fmt: on
X264_PARAMS = ParamTable(
    "x264-params",
    {
        **_X26X_COMMON,
        "b-pyramid": one_of("none", "strict", "normal", "0", "1", "2"),
        "me": one_of("dia", "hex", "umh", "esa", "tesa"),
        "trellis": integer(0, 2),
        "weightp": integer(0, 2),
        "psy-rd": _PAIR,
        "partitions": listed(
            one_of("all", "none", "p8x8", "p4x4", "b8x8", "i8x8", "i4x4"),
            ",",
            "all, none or a comma list of p8x8, p4x4, b8x8, i8x8, i4x4",
        ),
        "direct": one_of("none", "spatial", "temporal", "auto"),
        "nal-hrd": one_of("none", "vbr", "cbr"),
        "slices": integer(0, 32),
        "sar": Grammar("a ratio such as 1/1", lambda v: bool(re.fullmatch(r"\d{1,4}/\d{1,4}", v))),
        "frame-packing": integer(0, 7),
        "crf-max": number(0, 51),
        "qpstep": integer(1, 69),
        "ipratio": number(1, 10),
        "pbratio": number(1, 10),
    },
    frozenset(_X26X_BOOLEANS),
)
X265_PARAMS = ParamTable(
    "x265-params",
    {
        **_X26X_COMMON,
        "me": either(integer(0, 5), one_of("dia", "hex", "umh", "star", "sea", "full")),
        "subme": integer(0, 7),
        "merange": integer(0, 256),
        "level-idc": LEVEL,
        "psy-rd": number(0, 5),
        "psy-rdoq": number(0, 50),
        "rd": integer(1, 6),
        "ctu": one_of("16", "32", "64"),
        "min-cu-size": one_of("8", "16", "32"),
        "limit-refs": integer(0, 3),
        "rskip": integer(0, 2),
        "radl": integer(0, 16),
        "frame-threads": integer(0, 16),
        "lookahead-slices": integer(0, 16),
        "chromaloc": integer(0, 5),
        "log-level": either(integer(-1, 4), one_of("none", "error", "warning", "info", "debug")),
        "max-cll": Grammar(
            "two integers such as 1000,400", lambda v: bool(re.fullmatch(r"\d{1,5},\d{1,5}", v))
        ),
        "master-display": Grammar(
            "G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)",
            lambda v: bool(
                re.fullmatch(
                    r"(G|B|R|WP|L)\(\d{1,9},\d{1,9}\)(\s?(G|B|R|WP|L)\(\d{1,9},\d{1,9}\)){4}", v
                )
            ),
        ),
    },
    frozenset(_X26X_BOOLEANS),
)
_SVT_ENUM = integer(0, 22)
SVTAV1_PARAMS = ParamTable(
    "svtav1-params",
    {
        "preset": integer(-2, 13),
        "crf": integer(0, 63),
        "qp": integer(0, 63),
        "rc": integer(0, 2),
        "tbr": _KBPS,
        "mbr": _KBPS,
        "buf-sz": integer(0, 100_000),
        "keyint": either(
            integer(-2, 1000),
            Grammar("seconds such as 2s", lambda v: bool(re.fullmatch(r"\d{1,2}s", v))),
        ),
        "irefresh-type": integer(1, 2),
        "scd": integer(0, 1),
        "lookahead": integer(-1, 120),
        "tune": integer(0, 3),
        "film-grain": integer(0, 50),
        "film-grain-denoise": integer(0, 1),
        "enable-overlays": integer(0, 1),
        "fast-decode": integer(0, 2),
        "enable-tf": integer(0, 2),
        "enable-qm": integer(0, 1),
        "qm-min": integer(0, 15),
        "qm-max": integer(0, 15),
        "lp": integer(0, MAX_THREADS),
        "tile-rows": integer(0, 6),
        "tile-columns": integer(0, 6),
        "enable-variance-boost": integer(0, 1),
        "variance-boost-strength": integer(1, 4),
        "variance-octile": integer(1, 8),
        "sharpness": integer(-7, 7),
        "hierarchical-levels": integer(2, 5),
        "pred-struct": integer(1, 2),
        "aq-mode": integer(0, 2),
        "enable-cdef": integer(0, 1),
        "enable-restoration": integer(0, 1),
        "color-primaries": either(_SVT_ENUM, one_of(*COLOR_PRIMARIES)),
        "transfer-characteristics": either(_SVT_ENUM, one_of(*COLOR_TRC)),
        "matrix-coefficients": either(_SVT_ENUM, one_of(*COLORSPACES)),
        "color-range": integer(0, 1),
        "chroma-sample-position": integer(0, 2),
    },
    no_prefix=False,
)
PARAM_TABLES = {
    "x264opts": X264_PARAMS,
    "x264-params": X264_PARAMS,
    "x265-params": X265_PARAMS,
    "svtav1-params": SVTAV1_PARAMS,
}


def _param_key(table: ParamTable, key: str) -> tuple[str, bool]:
    """The key as the encoder reads it, and whether it is a negated boolean."""
    if not table.no_prefix:
        return key, False
    key = key.replace("_", "-")
    if key in table.keys or key in table.booleans:
        return key, False
    for prefix in ("no-", "no"):
        rest = key[len(prefix) :]
        if key.startswith(prefix) and (rest in table.booleans or rest in table.negatable):
            return rest, True
    return key, False


def check_param_string(option: str, value: str) -> str:
    """Judge an encoder parameter string key by key; returns it in canonical form."""
    table = PARAM_TABLES[option]
    pairs: list[str] = []
    pos = 0
    # Tokenized as av_dict_parse_string does (quotes and backslashes are undone) so a
    # disguised key is judged by what the encoder would read.
    while pos < len(value):
        key, pos = filtergraph.get_token(value, pos, "=:")
        item = None
        if pos < len(value) and value[pos] == "=":
            item, pos = filtergraph.get_token(value, pos + 1, ":")
        if pos < len(value):
            pos += 1
        if not key:
            raise _refuse(f"-{option} {value}", "an empty key; write key=value pairs with ':'")
        name, negated = _param_key(table, key)
        where = f"-{option} {key}"
        if name in table.booleans or (negated and name in table.negatable):
            if item is not None and not _BOOL(item):
                raise _refuse(where, f"{name} is a switch: 0, 1, true or false")
        elif name in table.keys and not negated:
            grammar = table.keys[name]
            if item is None or not grammar(item):
                raise _refuse(f"{where}={item or ''}", f"{name} takes {grammar.describe}")
        else:
            raise _refuse(
                where,
                f"{option} key {key!r} is not on the allow-list; "
                f"allowed keys: {', '.join(_param_names(table))}",
            )
        if item is not None and any(c in item for c in "\\'\"= \t\n"):
            raise _refuse(f"{where}={item}", "quotes, backslashes and spaces are not accepted")
        if item is None and option != "x264opts":
            item = "1"  # -x264-params and friends read a bare key as part of the next one
        pairs.append(key if item is None else f"{key}={item}")
    if not pairs:
        raise _refuse(f"-{option}", "needs key=value pairs separated by ':'")
    return ":".join(pairs)


def _param_names(table: ParamTable) -> list[str]:
    return sorted({*table.keys, *table.booleans})


# --- filters ------------------------------------------------------------------------------

_W, _H = (1.0, float(MAX_WIDTH)), (1.0, float(MAX_HEIGHT))
_ASPECT = (0.1, 10.0)
_SUB = (1.0, 4.0)
SIZE_NAMES = {
    "iw": _W,
    "in_w": _W,
    "ih": _H,
    "in_h": _H,
    "ow": _W,
    "out_w": _W,
    "oh": _H,
    "out_h": _H,
    "a": _ASPECT,
    "sar": _ASPECT,
    "dar": _ASPECT,
    "hsub": _SUB,
    "vsub": _SUB,
    "ohsub": _SUB,
    "ovsub": _SUB,
}
_KEEP_ASPECT = integer(-16, -1)
SCALE_W = either(_KEEP_ASPECT, expression(SIZE_NAMES, -16, MAX_WIDTH, "width"))
SCALE_H = either(_KEEP_ASPECT, expression(SIZE_NAMES, -16, MAX_HEIGHT, "height"))
OFFSET = expression(SIZE_NAMES, -MAX_WIDTH, MAX_WIDTH, "offset")
COLOR = Grammar(
    "a color name or #RRGGBB[AA], optionally @alpha",
    lambda v: bool(
        re.fullmatch(r"([A-Za-z]{3,20}|(#|0x)[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?)(@\d(\.\d+)?)?", v)
    ),
)
# fmt: off
SWS_FLAGS = flags("fast_bilinear", "bilinear", "bicubic", "experimental", "neighbor", "area",
                  "bicublin", "gauss", "sinc", "lanczos", "spline", "print_info", "accurate_rnd",
                  "full_chroma_int", "full_chroma_inp", "bitexact")
# fmt: on
RANGES = one_of("auto", "unknown", "full", "limited", "jpeg", "mpeg", "tv", "pc")
MATRICES = one_of("auto", "bt601", "bt470", "smpte170m", "bt709", "fcc", "smpte240m", "bt2020")
_SPEED = re.compile(r"^(?:(\d+(?:\.\d+)?)\*PTS|PTS\*(\d+(?:\.\d+)?)|PTS/(\d+(?:\.\d+)?))$")


def _no_slower(value: str) -> bool:
    """setpts that can only keep or shorten the timeline (never longer than the source)."""
    if value in ("PTS", "PTS-STARTPTS"):
        return True
    match = _SPEED.match(value)
    if not match:
        return False
    factor = float(match.group(1) or match.group(2) or 1)
    divisor = float(match.group(3) or 1)
    return 0 < factor <= 1 and divisor >= 1


SETPTS = Grammar(
    "PTS-STARTPTS, or a speed-up such as 0.5*PTS or PTS/2 (never a slow-down)", _no_slower
)


@dataclass(frozen=True)
class FilterRule:
    name: str
    kind: str  # video | audio
    params: dict[str, Grammar]
    positional: tuple[str, ...] = ()  # bare values take these names, as ffmpeg's shorthand
    aliases: dict[str, str] = field(default_factory=dict)
    summary: str = ""


def _f(name: str, kind: str, summary: str, positional: str = "",
       params: dict[str, Grammar] | None = None, aliases: str = "") -> FilterRule:  # fmt: skip
    """One filter: bare values fill `positional` in ffmpeg's option order; aliases 'a=b c=d'."""
    renames = dict(pair.split("=") for pair in aliases.split())
    return FilterRule(name, kind, params or {}, tuple(positional.split()), renames, summary)


_DEINT_MODE = either(
    integer(0, 3),
    one_of("send_frame", "send_field", "send_frame_nospatial", "send_field_nospatial"),
)
_PARITY = either(integer(-1, 1), one_of("tff", "bff", "auto"))
_DEINT = either(integer(0, 1), one_of("all", "interlaced"))
_MSIZE = integer(3, 23)
_AMOUNT = number(-2, 5)
_DB = Grammar(
    "a gain in dB such as -3dB or 6dB (-60 to 30)",
    lambda v: bool(re.fullmatch(r"[+-]?\d{1,2}(\.\d+)?dB", v)) and -60 <= float(v[:-2]) <= 30,
)
_SAMPLE_RATE = one_of(*SAMPLE_RATES)
_GAMMA = number(0.1, 10)
_EVAL = one_of("init", "frame")
_UNSHARP = {
    f"{plane}_{part}": grammar
    for plane in ("luma", "chroma", "alpha")
    for part, grammar in (("msize_x", _MSIZE), ("msize_y", _MSIZE), ("amount", _AMOUNT))
}
_LAYOUTS = ("mono", "stereo", "2.1", "5.1", "5.1(side)", "7.1")

# fmt: off
FILTERS: dict[str, FilterRule] = {rule.name: rule for rule in (
    _f("scale", "video", "resize", "w h flags interl size", {
        "w": SCALE_W, "h": SCALE_H, "flags": SWS_FLAGS, "interl": integer(-1, 1),
        "size": frame_size(), "in_range": RANGES, "out_range": RANGES,
        "in_color_matrix": MATRICES, "out_color_matrix": MATRICES,
        "force_original_aspect_ratio": either(integer(0, 2),
                                              one_of("disable", "decrease", "increase")),
        "force_divisible_by": integer(1, 256), "reset_sar": boolean(), "eval": _EVAL,
    }, "width=w height=h s=size"),
    _f("crop", "video", "cut a rectangle out", "w h x y keep_aspect exact", {
        "w": expression(SIZE_NAMES, -MAX_WIDTH, MAX_WIDTH, "width"),
        "h": expression(SIZE_NAMES, -MAX_HEIGHT, MAX_HEIGHT, "height"),
        "x": OFFSET, "y": OFFSET, "keep_aspect": boolean(), "exact": boolean(),
    }, "out_w=w out_h=h"),
    _f("pad", "video", "add borders", "w h x y color eval aspect", {
        "w": expression(SIZE_NAMES, 0, MAX_WIDTH, "width"),
        "h": expression(SIZE_NAMES, 0, MAX_HEIGHT, "height"),
        "x": OFFSET, "y": OFFSET, "color": COLOR, "eval": _EVAL, "aspect": ratio(10),
    }, "width=w height=h"),
    _f("fps", "video", "change the frame rate (same duration)", "fps", {
        "fps": either(frame_rate(), one_of("source_fps")),
        "round": one_of("zero", "inf", "down", "up", "near"),
        "eof_action": one_of("round", "pass"),
    }),
    _f("format", "video", "convert the pixel format", "pix_fmts", {
        "pix_fmts": listed(one_of(*PIXEL_FORMATS), "|",
                           "pixel formats separated by '|': " + ", ".join(PIXEL_FORMATS)),
    }),
    _f("setsar", "video", "set the sample aspect ratio", "sar max",
       {"sar": ratio(100), "max": integer(1, 1000)}, "r=sar ratio=sar"),
    _f("setdar", "video", "set the display aspect ratio", "dar max",
       {"dar": ratio(100), "max": integer(1, 1000)}, "r=dar ratio=dar"),
    _f("yadif", "video", "deinterlace", "mode parity deint",
       {"mode": _DEINT_MODE, "parity": _PARITY, "deint": _DEINT}),
    _f("bwdif", "video", "deinterlace", "mode parity deint", {
        "mode": either(integer(0, 1), one_of("send_frame", "send_field")),
        "parity": _PARITY, "deint": _DEINT,
    }),
    _f("hqdn3d", "video", "denoise", "luma_spatial chroma_spatial luma_tmp chroma_tmp",
       {k: number(0, 100) for k in ("luma_spatial", "chroma_spatial", "luma_tmp", "chroma_tmp")}),
    _f("nlmeans", "video", "denoise (non-local means)", "s p pc r rc", {
        "s": number(1, 30), "p": integer(1, 15), "pc": integer(0, 15), "r": integer(1, 31),
        "rc": integer(0, 31),
    }),
    _f("removegrain", "video", "denoise", "m0 m1 m2 m3",
       {f"m{i}": integer(0, 24) for i in range(4)}),
    _f("vaguedenoiser", "video", "denoise (wavelets)",
       "threshold method nsteps percent planes type", {
        "threshold": number(0, 1000),
        "method": either(integer(0, 2), one_of("hard", "soft", "garrote")),
        "nsteps": integer(1, 32), "percent": number(0, 100), "planes": integer(0, 15),
        "type": either(integer(0, 1), one_of("universal", "bayes")),
    }),
    _f("unsharp", "video", "sharpen or blur", " ".join(_UNSHARP), _UNSHARP,
       "lx=luma_msize_x ly=luma_msize_y la=luma_amount cx=chroma_msize_x cy=chroma_msize_y "
       "ca=chroma_amount ax=alpha_msize_x ay=alpha_msize_y aa=alpha_amount"),
    _f("transpose", "video", "rotate by 90 degrees", "dir passthrough", {
        "dir": either(integer(0, 7), one_of("cclock_flip", "clock", "cclock", "clock_flip")),
        "passthrough": one_of("none", "portrait", "landscape"),
    }),
    _f("hflip", "video", "mirror left-right"),
    _f("vflip", "video", "mirror top-bottom"),
    _f("deband", "video", "remove banding",
       "1thr 2thr 3thr 4thr range direction blur coupling", {
        **{f"{i}thr": number(0.00003, 0.5) for i in range(1, 5)},
        "range": integer(-64, 64), "direction": number(-6.2832, 6.2832),
        "blur": boolean(), "coupling": boolean(),
    }, "r=range d=direction b=blur c=coupling"),
    _f("deshake", "video", "stabilize (no motion file)",
       "x y w h rx ry edge blocksize contrast search", {
        "x": integer(-1, MAX_WIDTH), "y": integer(-1, MAX_HEIGHT),
        "w": integer(-1, MAX_WIDTH), "h": integer(-1, MAX_HEIGHT),
        "rx": integer(0, 64), "ry": integer(0, 64),
        "edge": either(integer(0, 3), one_of("blank", "original", "clamp", "mirror")),
        "blocksize": integer(4, 128), "contrast": integer(1, 255),
        "search": either(integer(0, 1), one_of("exhaustive", "less")),
    }),
    _f("deflicker", "video", "remove flicker", "size mode bypass", {
        "size": integer(2, 129), "mode": one_of("am", "gm", "hm", "qm", "cm", "pm", "median"),
        "bypass": boolean(),
    }, "s=size m=mode"),
    _f("dejudder", "video", "remove judder from telecined content", "cycle",
       {"cycle": integer(2, 240)}),
    _f("eq", "video", "brightness, contrast, saturation, gamma",
       "contrast brightness saturation gamma gamma_r gamma_g gamma_b gamma_weight eval", {
        "contrast": number(-1000, 1000), "brightness": number(-1, 1),
        "saturation": number(0, 3), "gamma": _GAMMA, "gamma_r": _GAMMA, "gamma_g": _GAMMA,
        "gamma_b": _GAMMA, "gamma_weight": number(0, 1), "eval": _EVAL,
    }),
    _f("setpts", "video", "restart or speed up timestamps", "expr", {"expr": SETPTS}),
    _f("volume", "audio", "change the volume", "volume precision", {
        "volume": either(number(0, 10), _DB), "precision": one_of("fixed", "float", "double"),
    }),
    _f("loudnorm", "audio", "EBU R128 loudness normalization (no stats file)",
       "I LRA TP measured_I measured_LRA measured_TP measured_thresh offset linear dual_mono "
       "print_format", {
        "I": number(-70, -5), "LRA": number(1, 50), "TP": number(-9, 0),
        "measured_I": number(-99, 0), "measured_LRA": number(0, 99),
        "measured_TP": number(-99, 99), "measured_thresh": number(-99, 0),
        "offset": number(-99, 99), "linear": boolean(), "dual_mono": boolean(),
        "print_format": one_of("none", "json", "summary"),
    }, "i=I lra=LRA tp=TP measured_i=measured_I measured_lra=measured_LRA "
       "measured_tp=measured_TP"),
    _f("aresample", "audio", "resample", "sample_rate", {
        "sample_rate": _SAMPLE_RATE, "osr": _SAMPLE_RATE, "async": integer(0, 1000),
        "resampler": one_of("swr", "soxr"),
    }, "out_sample_rate=osr"),
    _f("aformat", "audio", "convert sample format, rate, channel layout",
       "sample_fmts sample_rates channel_layouts", {
        "sample_fmts": listed(one_of(*SAMPLE_FORMATS), "|", "sample formats separated by '|'"),
        "sample_rates": listed(_SAMPLE_RATE, "|", "sample rates separated by '|'"),
        "channel_layouts": listed(one_of(*_LAYOUTS), "|",
                                  "channel layouts separated by '|': " + ", ".join(_LAYOUTS)),
    }, "f=sample_fmts r=sample_rates cl=channel_layouts"),
    _f("acontrast", "audio", "simple audio dynamic range compression", "contrast",
       {"contrast": number(0, 100)}),
    _f("asetpts", "audio", "restart or speed up timestamps", "expr", {"expr": SETPTS}),
)}
# fmt: on


def _filter_names(kind: str) -> str:
    return ", ".join(name for name, rule in FILTERS.items() if rule.kind == kind)


def check_filter_chain(chain: str, kind: str, option: str | None = None) -> str:
    """Judge one -vf (kind 'video') or -af ('audio') chain; returns its canonical form."""
    option = option or ("-vf" if kind == "video" else "-af")
    try:
        graph = filtergraph.parse(chain)
    except filtergraph.GraphSyntaxError as exc:
        raise _refuse(f"{option} {chain}", f"not a filter chain ffmpeg accepts ({exc})") from None
    if len(graph) != 1:
        raise _refuse(
            f"{option} {chain}",
            "one chain of filters separated by ',' ('; ' joins "
            "graphs, which a preset does not need)",
        )
    if len(graph[0]) > MAX_FILTERS_PER_CHAIN:
        raise _refuse(f"{option} {chain}", f"at most {MAX_FILTERS_PER_CHAIN} filters")
    judged = []
    for item in graph[0]:
        rule = FILTERS.get(item.name)
        if rule is None or rule.kind != kind:
            raise _refuse(
                f"{option} {item.name}",
                f"filter {item.name!r} is not on the allow-list; "
                f"allowed {kind} filters: {_filter_names(kind)}",
            )
        if item.inputs or item.outputs:
            raise _refuse(
                f"{option} {item.name}",
                "link labels ([name]) are not accepted: "
                "write one chain of filters separated by ','",
            )
        judged.append((rule.name, _check_filter_options(rule, item, option)))
    return filtergraph.serialize(judged)


def _check_filter_options(
    rule: FilterRule, item: filtergraph.Filter, option: str
) -> list[tuple[str | None, str]]:
    options: list[tuple[str | None, str]] = []
    named_seen = False
    for index, (key, value) in enumerate(item.options()):
        if key is None:
            if named_seen or index >= len(rule.positional):
                raise _refuse(
                    f"{option} {rule.name}={item.args}",
                    f"too many unnamed values; name them ({_param_list(rule)})",
                )
            name = rule.positional[index]
        else:
            named_seen = True
            name = rule.aliases.get(key, key)
        grammar = rule.params.get(name)
        where = f"{option} {rule.name} {key or name}"
        if grammar is None:
            allowed = _param_list(rule) or "none (use it without '=')"
            raise _refuse(
                where,
                f"parameter {key!r} of filter {rule.name!r} is not on the "
                f"allow-list; allowed parameters: {allowed}",
            )
        if not grammar(value):
            raise _refuse(f"{where}={value}", f"{rule.name} {name} takes {grammar.describe}")
        options.append((None if key is None else name, value))
    return options


def _param_list(rule: FilterRule) -> str:
    return ", ".join(rule.params)


# --- output options -----------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    spellings: tuple[str, ...]  # as written after '-'; ':v'-style specifiers may take ':N'
    grammar: Grammar | None  # None: a switch without a value
    summary: str
    # For filter chains and encoder parameter strings: judges and canonicalizes the value.
    judge: Callable[[str, str], str] | None = None


def _video_chain(value: str, spelling: str) -> str:
    return check_filter_chain(value, "video", f"-{spelling}")


def _audio_chain(value: str, spelling: str) -> str:
    return check_filter_chain(value, "audio", f"-{spelling}")


def _params(value: str, spelling: str) -> str:
    return check_param_string(spelling, value)


_CHAIN = Grammar("a chain of allow-listed filters (see Filters)", lambda v: True)
_PARAMS = Grammar("key=value pairs from the table below", lambda v: True)


def _o(
    spellings: str,
    grammar: Grammar | None,
    summary: str,
    judge: Callable[[str, str], str] | None = None,
) -> Option:
    return Option(tuple(spellings.split()), grammar, summary, judge)


OPTIONS: tuple[Option, ...] = (
    _o("c:v codec:v vcodec", one_of(*VIDEO_ENCODERS), "video encoder"),
    _o("c:a codec:a acodec", one_of(*AUDIO_ENCODERS), "audio encoder"),
    _o("c:s codec:s scodec", one_of(*SUBTITLE_ENCODERS), "subtitle encoder"),
    _o("c codec", one_of("copy"), "copy every stream"),
    _o("vn", None, "no video"),
    _o("an", None, "no audio"),
    _o("sn", None, "no subtitles"),
    _o("dn", None, "no data streams"),
    _o("y", None, "overwrite the output (it is always a fresh file in scratch)"),
    _o("b:v", VIDEO_BITRATE, "video bit rate"),
    _o("b:a", AUDIO_BITRATE, "audio bit rate"),
    _o("minrate minrate:v", VIDEO_BITRATE, "minimum bit rate"),
    _o("maxrate maxrate:v", VIDEO_BITRATE, "maximum bit rate"),
    _o("bufsize bufsize:v", bitrate(400e6), "rate control buffer"),
    _o("crf crf:v", number(0, 63), "constant quality"),
    _o("qp qp:v", integer(0, 69), "constant quantizer"),
    _o("q:v qscale:v", number(0, 31), "video quality scale"),
    _o("q:a qscale:a", number(-1, 10), "audio quality scale"),
    _o("preset preset:v", either(one_of(*X264_PRESETS), integer(-2, 13)), "encoder speed preset"),
    _o("tune tune:v", one_of(*TUNES), "encoder tuning"),
    _o("profile:v profile", one_of(*VIDEO_PROFILES), "video profile"),
    _o("profile:a", one_of("aac_low", "aac_he", "aac_he_v2", "aac_main"), "audio profile"),
    _o("level level:v", LEVEL, "codec level"),
    _o("g g:v", integer(1, 1000), "GOP length (frames)"),
    _o("keyint_min keyint_min:v", integer(1, 1000), "minimum GOP length"),
    _o("sc_threshold sc_threshold:v", integer(0, 100), "scene-cut threshold (0 disables)"),
    _o("bf bf:v", integer(0, 16), "B-frames"),
    _o("refs refs:v", integer(1, 16), "reference frames"),
    _o("force_key_frames force_key_frames:v", FORCE_KEY_FRAMES, "keyframes at given times"),
    _o("flags flags:v", flags("cgop", "global_header", "ildct", "ilme"), "codec flags"),
    _o("pix_fmt pix_fmt:v", one_of(*PIXEL_FORMATS), "pixel format"),
    _o("r r:v", frame_rate(), "output frame rate"),
    _o("fpsmax fpsmax:v", frame_rate(), "frame rate ceiling"),
    _o("s s:v", frame_size(), "output frame size"),
    _o("aspect aspect:v", ASPECT, "display aspect ratio"),
    _o(
        "fps_mode fps_mode:v vsync",
        one_of("passthrough", "cfr", "vfr", "auto", "0", "1", "2", "-1"),
        "frame timing",
    ),
    _o("color_primaries", one_of(*COLOR_PRIMARIES), "color primaries tag"),
    _o("color_trc", one_of(*COLOR_TRC), "transfer characteristics tag"),
    _o("colorspace", one_of(*COLORSPACES), "matrix coefficients tag"),
    _o("color_range", one_of("tv", "pc", "limited", "full", "unknown"), "color range tag"),
    _o("threads", integer(0, MAX_THREADS), f"encoder threads (at most {MAX_THREADS})"),
    _o("filter_threads", integer(0, MAX_THREADS), f"filter threads (at most {MAX_THREADS})"),
    _o("vf filter:v", _CHAIN, "video filter chain", _video_chain),
    _o("af filter:a", _CHAIN, "audio filter chain", _audio_chain),
    _o("x264opts", _PARAMS, "libx264 parameters (x264 keys)", _params),
    _o("x264-params", _PARAMS, "libx264 parameters (x264 keys)", _params),
    _o("x265-params", _PARAMS, "libx265 parameters (x265 keys)", _params),
    _o("svtav1-params", _PARAMS, "libsvtav1 parameters (SVT-AV1 keys)", _params),
    _o("nal-hrd", one_of("none", "vbr", "cbr"), "libx264 HRD signalling"),
    _o("forced-idr", boolean(), "libx264/libx265: forced keyframes are IDR"),
    _o("aq-mode", integer(0, 4), "adaptive quantization mode"),
    _o("deadline quality", one_of("good", "best", "realtime"), "libvpx speed/quality"),
    _o("cpu-used", integer(-16, 16), "libvpx/libaom speed"),
    _o("row-mt", boolean(), "libvpx/libaom row multithreading"),
    _o("tile-columns", integer(0, 6), "libvpx tile columns (log2)"),
    _o("tile-rows", integer(0, 2), "libvpx tile rows (log2)"),
    _o("frame-parallel", boolean(), "libvpx frame parallel decodability"),
    _o("lag-in-frames", integer(0, 25), "libvpx/libaom lookahead"),
    _o("auto-alt-ref", integer(0, 6), "libvpx alternate reference frames"),
    _o("usage", one_of("good", "realtime", "allintra"), "libaom usage"),
    _o("application", one_of("voip", "audio", "lowdelay"), "libopus application"),
    _o(
        "vbr",
        one_of("on", "off", "constrained", "0", "1", "2", "3", "4", "5"),
        "libopus VBR / libfdk VBR mode",
    ),
    _o(
        "frame_duration",
        one_of("2.5", "5", "10", "20", "40", "60", "80", "100", "120"),
        "libopus frame size (ms)",
    ),
    _o("ac", integer(1, 8), "audio channels"),
    _o("ar", one_of(*SAMPLE_RATES), "audio sample rate"),
    _o("sample_fmt", one_of(*SAMPLE_FORMATS), "audio sample format"),
    _o("rematrix_maxval", number(0, 1), "downmix clipping guard"),
    _o("map", MAP, "pick streams of the job's input"),
    _o("map_metadata map_chapters", one_of("-1", "0"), "keep (0) or drop (-1) metadata/chapters"),
    _o(
        "metadata metadata:g metadata:s metadata:s:v metadata:s:a metadata:s:s",
        METADATA,
        "output metadata",
    ),
    _o("f", one_of(*MUXERS), "output container"),
    _o("t", timestamp(), "stop after this duration"),
    _o("to", timestamp(), "stop at this time"),
    _o("ss", timestamp(), "start at this time (output seek)"),
    _o("frames:v vframes", integer(1, 100_000_000), "stop after N video frames"),
    _o("shortest", None, "end with the shortest stream"),
    _o(
        "avoid_negative_ts",
        one_of("auto", "make_zero", "make_non_negative", "disabled"),
        "timestamp shifting",
    ),
    _o("max_muxing_queue_size", integer(1, 65536), "muxing queue (packets)"),
    _o(
        "strict",
        one_of("very", "strict", "normal", "unofficial", "experimental", "-2", "-1", "0", "1"),
        "standards compliance",
    ),
    _o("tag:v", one_of("avc1", "avc3", "hvc1", "hev1", "av01", "vp09"), "video codec tag"),
    _o("tag:a", one_of("mp4a", "opus", "fLaC", "ac-3", "ec-3"), "audio codec tag"),
    _o(
        "movflags",
        flags(
            "faststart",
            "frag_keyframe",
            "empty_moov",
            "default_base_moof",
            "separate_moof",
            "omit_tfhd_offset",
            "cmaf",
            "dash",
            "global_sidx",
            "negative_cts_offsets",
            "write_colr",
            "delay_moov",
            "frag_custom",
            "isml",
            "disable_chpl",
            "write_gama",
            "use_metadata_tags",
            "skip_sidx",
            "frag_discont",
        ),
        "MP4/MOV layout",
    ),
    _o("frag_duration", number(0, 60_000_000), "fragment duration (MP4: µs, DASH: s)"),
    _o("min_frag_duration", integer(0, 60_000_000), "minimum fragment duration (µs)"),
    _o("brand", slug(8), "MP4 major brand"),
    _o("write_tmcd", boolean(), "MOV timecode track"),
    _o("hls_time", number(0.1, 60), "HLS segment length (s)"),
    _o("hls_init_time", number(0, 60), "HLS first segment length (s)"),
    _o("hls_playlist_type", one_of("vod", "event"), "HLS playlist type"),
    _o("hls_segment_type", one_of("mpegts", "fmp4"), "HLS segment container"),
    _o("hls_list_size", integer(0, 100_000), "HLS playlist length (0 = all)"),
    _o(
        "hls_flags",
        flags(
            "independent_segments",
            "single_file",
            "omit_endlist",
            "program_date_time",
            "split_by_time",
            "round_durations",
            "discont_start",
            "iframes_only",
            "second_level_segment_index",
        ),
        "HLS flags (none that read or delete files)",
    ),
    _o("start_number", integer(0, 1_000_000_000), "first segment number"),
    _o("seg_duration", number(0.1, 60), "DASH segment length (s)"),
    _o("use_template", boolean(), "DASH SegmentTemplate"),
    _o("use_timeline", boolean(), "DASH SegmentTimeline"),
    _o("single_file", boolean(), "DASH: one file per representation"),
    _o("dash_segment_type", one_of("auto", "mp4", "webm"), "DASH segment container"),
    _o("window_size extra_window_size", integer(0, 100_000), "DASH manifest window"),
    _o("hls_playlist", boolean(), "DASH: also write HLS playlists"),
    _o("index_correction", boolean(), "DASH segment index correction"),
    _o("frag_type", one_of("auto", "none", "every_frame", "duration", "pframes"), "DASH fragments"),
    _o("mpd_profile", flags("dash", "dvb_dash"), "DASH profile"),
    _o("update", boolean(), "image2: keep overwriting one image"),
)
_BY_SPELLING = {spelling: option for option in OPTIONS for spelling in option.spellings}


def lookup(spelling: str) -> Option:
    """The allow-list entry for an option as written without its leading '-'."""
    option = _BY_SPELLING.get(spelling)
    if option is None and ":" in spelling:
        # `-c:v:0`, `-b:a:1`, `-filter:v:0`, `-metadata:s:a:0`: a stream index on a
        # spelling that already names a stream type.
        base, _, index = spelling.rpartition(":")
        if index.isdigit() and len(index) <= 2 and ":" in base:
            option = _BY_SPELLING.get(base)
    if option is None:
        hint = difflib.get_close_matches(spelling, list(_BY_SPELLING), n=3)
        suggestion = f" (did you mean {', '.join('-' + h for h in hint)}?)" if hint else ""
        raise _refuse(
            f"-{spelling}",
            "it is not on the allow-list of output options"
            + suggestion
            + "; the allowed options are listed in the docs under "
            f"'{README_SECTION}' (docs/reference/allowlist.md) and by "
            "`python -m chalicelib.presets.allowlist`",
        )
    return option


def check_option(option: str, value: str | None = None) -> str | None:
    """Judge one option (with its leading '-') and value; returns the value to pass to ffmpeg."""
    if not option.startswith("-") or option == "-":
        raise _refuse(
            option,
            "extra outputs or inputs are not accepted: the output file name "
            "comes from the preset's 'output' field",
        )
    entry = lookup(option[1:])
    if entry.grammar is None:
        if value is not None:
            raise _refuse(f"{option} {value}", "this switch takes no value")
        return None
    if value is None:
        raise _refuse(option, f"needs a value: {entry.grammar.describe}")
    if entry.judge is not None:
        return entry.judge(value, option[1:])
    if not entry.grammar(value):
        raise _refuse(f"{option} {value}", f"{option} takes {entry.grammar.describe}")
    return value


def check_args(args: list[str]) -> list[str]:
    """Judge a whole preset argv (options only, no inputs or outputs); returns canonical argv."""
    out: list[str] = []
    pos = 0
    while pos < len(args):
        option = args[pos]
        if not option.startswith("-") or option == "-":
            check_option(option)  # raises: a bare word is an extra output to ffmpeg
        entry = lookup(option[1:])
        if entry.grammar is None:
            out.append(option)
            pos += 1
            continue
        value = args[pos + 1] if pos + 1 < len(args) else None
        checked = check_option(option, value)
        out += [option, checked or ""]
        pos += 2
    return out


# --- the docs' table -----------------------------------------------------------------------


def markdown() -> str:
    """The allow-list as Markdown, for docs/reference/allowlist.md (a test keeps them identical)."""
    lines = [
        f"{len(OPTIONS)} output options, {len(FILTERS)} filters, "
        f"{sum(len(_param_names(t)) for t in (X264_PARAMS, X265_PARAMS, SVTAV1_PARAMS))} "
        "encoder parameter keys. Bounds: frame size at most "
        f"{MAX_WIDTH}x{MAX_HEIGHT}, frame rate at most {MAX_FPS}, at most {MAX_THREADS} threads; "
        "nothing loops, pads or slows down the timeline.",
        "",
        "#### Output options",
        "",
        "| Option | Value | What |",
        "|---|---|---|",
    ]
    for option in OPTIONS:
        names = ", ".join(f"`-{s}`" for s in option.spellings)
        value = option.grammar.describe if option.grammar else "(no value)"
        lines.append(f"| {names} | {_cell(value)} | {option.summary} |")
    lines += [
        "",
        "#### Filters (`-vf` / `-af`, one chain, no labels)",
        "",
        "| Filter | Kind | Parameters (unnamed values fill them in this order) |",
        "|---|---|---|",
    ]
    for rule in FILTERS.values():
        params = "; ".join(f"`{n}`: {_cell(g.describe)}" for n, g in rule.params.items())
        lines.append(f"| `{rule.name}` | {rule.kind} | {params or '(none)'} |")
    for title, table in (
        ("-x264-params / -x264opts", X264_PARAMS),
        ("-x265-params", X265_PARAMS),
        ("-svtav1-params", SVTAV1_PARAMS),
    ):
        lines += ["", f"#### Encoder parameters: `{title}`", "", "| Key | Value |", "|---|---|"]
        for key, grammar in table.keys.items():
            lines.append(f"| `{key}` | {_cell(grammar.describe)} |")
        switches = ", ".join(f"`{k}`" for k in sorted(table.booleans))
        if switches:
            lines.append(f"| {switches} | switches: 0, 1, true, false (also `no-` + key) |")
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


if __name__ == "__main__":
    if "--markdown" in sys.argv[1:]:
        sys.stdout.write(markdown())
    else:
        for option in OPTIONS:
            value = option.grammar.describe if option.grammar else "(no value)"
            print(f"{' '.join('-' + s for s in option.spellings):40} {value}")
        print(f"\nfilters: {', '.join(FILTERS)}")
