"""Value grammars for allow-listed options: bounded numbers, enumerations, slugs, expressions.

Each grammar answers one question — is this text an acceptable value? — and says in
words what it accepts, so a refusal can tell the operator what is allowed and the
docs' allow-list table can list it. Nothing here runs anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAX_WIDTH = 7680
MAX_HEIGHT = 4320
MAX_FPS = 240
MAX_THREADS = 64


@dataclass(frozen=True)
class Grammar:
    describe: str
    accepts: Callable[[str], bool]

    def __call__(self, value: str) -> bool:
        return self.accepts(value)


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _number(value: str) -> float | None:
    return float(value) if _NUMBER.match(value) else None


def number(lo: float, hi: float, *, integer: bool = False) -> Grammar:
    def accepts(value: str) -> bool:
        parsed = _number(value)
        if parsed is None or (integer and not re.fullmatch(r"[+-]?\d+", value)):
            return False
        return lo <= parsed <= hi

    kind = "integer" if integer else "number"
    return Grammar(f"{kind} {_fmt(lo)} to {_fmt(hi)}", accepts)


def integer(lo: int, hi: int) -> Grammar:
    return number(lo, hi, integer=True)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def one_of(*values: str, describe: str | None = None) -> Grammar:
    allowed = frozenset(values)
    return Grammar(describe or "one of " + ", ".join(values), lambda v: v in allowed)


def either(*grammars: Grammar) -> Grammar:
    return Grammar(" or ".join(g.describe for g in grammars), lambda v: any(g(v) for g in grammars))


def boolean() -> Grammar:
    return one_of("0", "1", "true", "false", describe="0, 1, true or false")


def flags(*names: str) -> Grammar:
    """Flag sets such as +faststart+frag_keyframe: every flag from the list."""
    allowed = frozenset(names)

    def accepts(value: str) -> bool:
        parts = re.findall(r"([+-]?)([A-Za-z0-9_]+)", value)
        rebuilt = "".join(sign + name for sign, name in parts)
        return bool(parts) and rebuilt == value and all(name in allowed for _, name in parts)

    return Grammar(f"flags from {', '.join(names)} (as +a+b)", accepts)


def listed(item: Grammar, separator: str, describe: str) -> Grammar:
    return Grammar(describe, lambda v: bool(v) and all(item(p) for p in v.split(separator)))


_BITRATE = re.compile(r"^(\d+(\.\d+)?)([kKmM]?)$")


def bitrate(max_bits: float) -> Grammar:
    def accepts(value: str) -> bool:
        match = _BITRATE.match(value)
        if not match:
            return False
        scale = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}[match.group(3)]
        return 0 <= float(match.group(1)) * scale <= max_bits

    return Grammar(
        f"a bit rate such as 600k or 3M (0 with crf), at most {int(max_bits / 1e6)}M", accepts
    )


_RATIONAL = re.compile(r"^(\d+(\.\d+)?)(/(\d+(\.\d+)?))?$")


def frame_rate(max_fps: float = MAX_FPS) -> Grammar:
    named = {"ntsc": 30000 / 1001, "pal": 25, "film": 24, "ntsc-film": 24000 / 1001}

    def accepts(value: str) -> bool:
        if value in named:
            return True
        match = _RATIONAL.match(value)
        if not match:
            return False
        num = float(match.group(1))
        den = float(match.group(4) or 1)
        return den > 0 and 0 < num / den <= max_fps

    return Grammar(f"a frame rate such as 30, 30000/1001 or ntsc, at most {max_fps}", accepts)


def ratio(max_value: float = 100) -> Grammar:
    def accepts(value: str) -> bool:
        match = _RATIONAL.match(value)
        if not match:
            return False
        num, den = float(match.group(1)), float(match.group(4) or 1)
        return den > 0 and 0 <= num / den <= max_value

    return Grammar("a ratio such as 1, 16/9 or 1.777", accepts)


_SIZE_NAMES = {
    "ntsc": (720, 480), "pal": (720, 576), "qcif": (176, 144), "cif": (352, 288),
    "vga": (640, 480), "svga": (800, 600), "hd480": (852, 480), "hd720": (1280, 720),
    "hd1080": (1920, 1080), "2k": (2048, 1080), "4k": (4096, 2160), "uhd2160": (3840, 2160),
    "uhd4320": (7680, 4320),
}  # fmt: skip


def frame_size() -> Grammar:
    def accepts(value: str) -> bool:
        if value in _SIZE_NAMES:
            return True
        match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", value)
        return bool(match) and (
            0 < int(match.group(1)) <= MAX_WIDTH and 0 < int(match.group(2)) <= MAX_HEIGHT
        )

    return Grammar(f"WIDTHxHEIGHT at most {MAX_WIDTH}x{MAX_HEIGHT}, or hd720, hd1080, ...", accepts)


def slug(max_length: int = 64) -> Grammar:
    pattern = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{max_length - 1}}}$")
    return Grammar("letters, digits, '.', '_' and '-'", lambda v: bool(pattern.match(v)))


def text(max_length: int = 200) -> Grammar:
    """Free text written into the output only (metadata): printable, no separators."""
    pattern = re.compile(rf"^[A-Za-z0-9_.,@+\-()]{{1,{max_length}}}$")
    return Grammar(f"up to {max_length} letters, digits and . , @ + - _ ( )", pattern.match)


def timestamp() -> Grammar:
    pattern = re.compile(r"^(\d{1,6}(\.\d{1,6})?|\d{1,3}:\d{2}:\d{2}(\.\d{1,6})?)$")
    return Grammar("a time in seconds or HH:MM:SS[.ms]", lambda v: bool(pattern.match(v)))


# --- expressions (ffmpeg's av_expr), judged by the range of values they can take ---------

Interval = tuple[float, float]


class _Unbounded(Exception):
    pass


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")
_FUNCTIONS = {"min", "max", "trunc", "floor", "ceil", "round", "abs", "if", "ifnot",
              "gt", "gte", "lt", "lte", "eq", "not", "mod", "sqrt"}  # fmt: skip


def _tokens(text: str) -> list[str]:
    out = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            break
        out.append(match.group(1) or match.group(2) or match.group(3))
        pos = match.end()
    if text[pos:].strip():
        raise _Unbounded
    return [t for t in out if t.strip()]


class _Bounds:
    """Interval arithmetic over a small recursive-descent parse of an av_expr expression."""

    def __init__(self, text: str, names: dict[str, Interval]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.names = names

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Unbounded
        self.pos += 1
        return token

    def run(self) -> Interval:
        value = self.sum()
        if self.peek() is not None:
            raise _Unbounded
        return value

    def sum(self) -> Interval:
        lo, hi = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            b_lo, b_hi = self.product()
            lo, hi = (lo + b_lo, hi + b_hi) if op == "+" else (lo - b_hi, hi - b_lo)
        return lo, hi

    def product(self) -> Interval:
        lo, hi = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            b_lo, b_hi = self.unary()
            if op == "/":
                if b_lo <= 0 <= b_hi:
                    raise _Unbounded  # a divisor that can be zero has no bound
                b_lo, b_hi = 1 / b_hi, 1 / b_lo
            products = (lo * b_lo, lo * b_hi, hi * b_lo, hi * b_hi)
            lo, hi = min(products), max(products)
        return lo, hi

    def unary(self) -> Interval:
        if self.peek() == "-":
            self.take()
            lo, hi = self.unary()
            return -hi, -lo
        if self.peek() == "+":
            self.take()
        return self.atom()

    def atom(self) -> Interval:
        token = self.take()
        if token == "(":  # noqa: S105 - a parenthesis, not a secret
            value = self.sum()
            self.take(")")
            return value
        if _number(token) is not None:
            return float(token), float(token)
        if token in _FUNCTIONS and self.peek() == "(":
            self.take("(")
            args = [self.sum()]
            while self.peek() == ",":
                self.take()
                args.append(self.sum())
            self.take(")")
            return _apply(token, args)
        if token in self.names:
            return self.names[token]
        raise _Unbounded


def _apply(name: str, args: list[Interval]) -> Interval:
    los, his = [a[0] for a in args], [a[1] for a in args]
    if name in ("min", "max") and len(args) >= 2:
        pick = min if name == "min" else max
        return pick(los), pick(his)
    if name in ("gt", "gte", "lt", "lte", "eq") and len(args) == 2:
        return 0.0, 1.0
    if name == "not" and len(args) == 1:
        return 0.0, 1.0
    if name in ("if", "ifnot") and len(args) in (2, 3):
        branches = args[1:] if len(args) == 3 else [args[1], (0.0, 0.0)]
        return min(b[0] for b in branches), max(b[1] for b in branches)
    if len(args) == 1:
        lo, hi = args[0]
        if name in ("trunc", "floor", "ceil", "round"):
            return math.floor(lo), math.ceil(hi)
        if name == "abs":
            return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))
        if name == "sqrt" and lo >= 0:
            return math.sqrt(lo), math.sqrt(hi)
    if name == "mod" and len(args) == 2 and args[1][0] > 0:
        return min(0.0, los[0]), max(0.0, args[1][1])
    raise _Unbounded


def expression_bounds(text: str, names: dict[str, Interval]) -> Interval | None:
    """The range an expression can take, or None if it uses anything else or has no bound."""
    try:
        return _Bounds(text, names).run()
    except (_Unbounded, OverflowError, ZeroDivisionError):
        return None


def expression(names: dict[str, Interval], lo: float, hi: float, what: str) -> Grammar:
    def accepts(value: str) -> bool:
        if len(value) > 200:
            return False
        bounds = expression_bounds(value, names)
        return bounds is not None and lo <= bounds[0] and bounds[1] <= hi

    return Grammar(
        f"{what}: a number or an expression of {', '.join(sorted(names))} "
        f"({', '.join(sorted(_FUNCTIONS))}) that stays within {_fmt(lo)} to {_fmt(hi)}",
        accepts,
    )


def names_of(*groups: Iterable[tuple[str, Interval]]) -> dict[str, Interval]:
    return {name: interval for group in groups for name, interval in group}
