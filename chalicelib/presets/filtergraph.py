"""ffmpeg's filter graph syntax: parsed the way libavfilter parses it, and written back.

A graph is chains separated by `;`, a chain is filters separated by `,`, a filter is
`[in]name@id=args[out]`. Every level uses `av_get_token`: leading whitespace is
dropped, `\\x` is a literal `x`, `'...'` is literal text, trailing unescaped
whitespace is dropped. The args of a filter are then split a second time, with the
same rules, into `key=value` pairs separated by `:` (or bare values, which take the
filter's options in order). Judging the parsed result, not the text, is what makes
quotes, backslashes and whitespace useless as disguises; writing the judged result
back in a canonical form with no quotes means ffmpeg runs exactly what was judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WHITESPACE = " \n\t\r"


class GraphSyntaxError(ValueError):
    """The text is not a filter graph ffmpeg would accept."""


def get_token(text: str, pos: int, terminators: str) -> tuple[str, int]:
    """libavutil's av_get_token: the token starting at `pos` and the position after it."""
    while pos < len(text) and text[pos] in WHITESPACE:
        pos += 1
    out: list[str] = []
    keep = 0  # characters before this index were escaped or quoted: never trimmed
    while pos < len(text) and text[pos] not in terminators:
        char = text[pos]
        pos += 1
        if char == "\\" and pos < len(text):
            out.append(text[pos])
            pos += 1
            keep = len(out)
        elif char == "'":
            while pos < len(text) and text[pos] != "'":
                out.append(text[pos])
                pos += 1
            if pos < len(text):
                pos += 1
                keep = len(out)
        else:
            out.append(char)
    while len(out) > keep and out[-1] in WHITESPACE:
        out.pop()
    return "".join(out), pos


def _is_key_char(char: str) -> bool:
    # libavutil/opt.c is_key_char: ASCII letters, digits, - _ / .
    return (char.isascii() and char.isalnum()) or char in "-_/."


def split_options(args: str) -> list[tuple[str | None, str]]:
    """Split a filter's args as av_opt_get_key_value does: (key or None if positional, value)."""
    pairs: list[tuple[str | None, str]] = []
    pos = 0
    while pos < len(args):
        key: str | None = None
        probe = pos
        while probe < len(args) and args[probe] in WHITESPACE:
            probe += 1
        start = probe
        while probe < len(args) and _is_key_char(args[probe]):
            probe += 1
        end = probe
        while probe < len(args) and args[probe] in WHITESPACE:
            probe += 1
        if probe < len(args) and args[probe] == "=":
            key = args[start:end]
            pos = probe + 1
        value, pos = get_token(args, pos, ":")
        pairs.append((key, value))
        if pos < len(args):
            pos += 1  # the ':' separator
    return pairs


@dataclass
class Filter:
    name: str
    instance: str | None = None
    args: str | None = None  # after the graph level's unescaping, before option splitting
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def options(self) -> list[tuple[str | None, str]]:
        return split_options(self.args) if self.args is not None else []


def _labels(text: str, pos: int) -> tuple[list[str], int]:
    labels = []
    while True:
        while pos < len(text) and text[pos] in WHITESPACE:
            pos += 1
        if pos >= len(text) or text[pos] != "[":
            return labels, pos
        name, pos = get_token(text, pos + 1, "]")
        if not name:
            raise GraphSyntaxError("empty link label '[]'")
        if pos >= len(text) or text[pos] != "]":
            raise GraphSyntaxError("a '[' label is not closed with ']'")
        labels.append(name)
        pos += 1


def parse(graph: str) -> list[list[Filter]]:
    """Parse a filter graph into chains of filters, with libavfilter's tokenizing rules."""
    chains: list[list[Filter]] = []
    chain: list[Filter] = []
    pos = 0
    while True:
        inputs, pos = _labels(graph, pos)
        name, pos = get_token(graph, pos, "=,;[")
        if not name:
            raise GraphSyntaxError("a filter name is missing (empty filter in the graph)")
        args = None
        if pos < len(graph) and graph[pos] == "=":
            args, pos = get_token(graph, pos + 1, "[],;")
        outputs, pos = _labels(graph, pos)
        base, _, instance = name.partition("@")
        chain.append(Filter(base, instance or None, args, inputs, outputs))
        while pos < len(graph) and graph[pos] in WHITESPACE:
            pos += 1
        if pos >= len(graph):
            chains.append(chain)
            return chains
        separator = graph[pos]
        pos += 1
        if separator == ";":
            chains.append(chain)
            chain = []
        elif separator != ",":
            raise GraphSyntaxError(f"unexpected {separator!r} after filter {base!r}")


def escape_value(value: str) -> str:
    """One option value written so that both tokenizing levels give it back unchanged."""
    # Allow-listed values never hold quotes, ':' '=' '[' ']' ';' or backslashes; only
    # expressions hold ',' (as in min(1280,iw)), which the graph level would split on.
    if any(char in value for char in "\\'[];:=" + WHITESPACE):
        raise GraphSyntaxError(f"value {value!r} cannot be written without quoting")
    return value.replace(",", "\\,")


def serialize(chain: list[tuple[str, list[tuple[str | None, str]]]]) -> str:
    """Write one chain of (filter, [(key or None, value)]) in canonical, quote-free form."""
    parts = []
    for name, options in chain:
        if not options:
            parts.append(name)
            continue
        args = ":".join(
            escape_value(value) if key is None else f"{key}={escape_value(value)}"
            for key, value in options
        )
        parts.append(f"{name}={args}")
    return ",".join(parts)
