"""PyYAML's SafeDumper with its two per-character loops replaced by regex scans.

libyaml (yaml.CSafeDumper) writes most of the rendered objects, but folds long
double-quoted scalars differently from PyYAML, so the objects holding scripts and config
files (double-quoted by PyYAML) are written by the pure-Python emitter to keep the bytes
of manifests.yaml. There, almost all the time goes to two loops over every character of
every scalar: ``analyze_scalar`` (which styles a scalar allows) and ``write_double_quoted``
(escapes and line folding). This dumper computes the same analysis with a few regex
searches, and writes double-quoted scalars by stepping only through the characters where
the original loop can do anything (spaces, characters to escape, the one after an
escape), with the original's arithmetic. tests/unit/test_fast_yaml.py holds both to
PyYAML's results on generated strings and documents.

Only the ASCII output the render uses (allow_unicode off) takes the fast paths.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.emitter import ScalarAnalysis

_BREAKS = "\n\x85\u2028\u2029"
_WHITESPACE = "\0 \t\r\n\x85\u2028\u2029"  # what PyYAML counts as "preceded/followed by whitespace"
_LINE_BREAK = re.compile("[\n\x85\u2028\u2029]")
_SPECIAL = re.compile("[^\n\x20-\x7e]")  # without allow_unicode: everything else but \n and printable ASCII
_FLOW_INDICATOR = re.compile(r"[,?\[\]{}:]")  # anywhere after the first character
_BLOCK_COLON = re.compile(":(?=[\x00 \t\r\n\x85\u2028\u2029]|\\Z)")  # ": " or a final ":"
_COMMENT = re.compile("[\x00 \t\r\n\x85\u2028\u2029]#")  # " #" after the first character
_BREAK_SPACE = re.compile("[\n\x85\u2028\u2029] ")
_SPACE_BREAK = re.compile(" [\n\x85\u2028\u2029]")
# The characters write_double_quoted escapes (without allow_unicode).
_ESCAPED = re.compile('["\\\\]|[^\x20-\x7e]')


class FastSafeDumper(yaml.SafeDumper):
    def analyze_scalar(self, scalar: str) -> ScalarAnalysis:
        if not scalar or self.allow_unicode:
            return super().analyze_scalar(scalar)
        first = scalar[0]
        flow_indicators, block_indicators = _indicators(scalar)
        line_breaks = _LINE_BREAK.search(scalar) is not None
        special_characters = _SPECIAL.search(scalar) is not None
        leading = first == " " or first in _BREAKS
        trailing_space = scalar[-1] == " "
        trailing = trailing_space or scalar[-1] in _BREAKS
        break_space = _BREAK_SPACE.search(scalar) is not None
        space_break = _SPACE_BREAK.search(scalar) is not None

        # From here on, PyYAML's own rules, in its order.
        allow_flow_plain = allow_block_plain = allow_single_quoted = allow_block = True
        if leading or trailing:
            allow_flow_plain = allow_block_plain = False
        if trailing_space:
            allow_block = False
        if break_space:
            allow_flow_plain = allow_block_plain = allow_single_quoted = False
        if space_break or special_characters:
            allow_flow_plain = allow_block_plain = allow_single_quoted = allow_block = False
        if line_breaks:
            allow_flow_plain = allow_block_plain = False
        if flow_indicators:
            allow_flow_plain = False
        if block_indicators:
            allow_block_plain = False
        return ScalarAnalysis(
            scalar=scalar,
            empty=False,
            multiline=line_breaks,
            allow_flow_plain=allow_flow_plain,
            allow_block_plain=allow_block_plain,
            allow_single_quoted=allow_single_quoted,
            allow_double_quoted=True,
            allow_block=allow_block,
        )

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        if self.allow_unicode or self.encoding:
            super().write_double_quoted(text, split)
            return
        self.write_indicator('"', True)
        start = position = 0
        size, last = len(text), len(text) - 1
        while True:
            escape = _ESCAPED.search(text, position)
            next_escape = escape.start() if escape else size
            # A space only matters where the line would pass the width: the first one past
            # that point and before the next escape is the next place the original folds.
            fold_from = start + self.best_width - self.column + 1 if split else size
            space = text.find(" ", max(position, fold_from, 1), min(next_escape, last))
            if space != -1:
                start = self._quoted_step(text, start, space, split, last)
                position = space + 1
                continue
            if next_escape == size:
                break
            end = next_escape
            while True:  # the escape, then the index after it, where the original may fold
                start = self._quoted_step(text, start, end, split, last)
                if end > last or not _escaped(text[end]):
                    break
                end += 1
            position = end + 1
        if start < size:
            self._write(text[start:])
        self.write_indicator('"', False)

    def _quoted_step(self, text: str, start: int, end: int, split: bool, last: int) -> int:
        """One turn of PyYAML's write_double_quoted loop at index ``end``; returns start."""
        ch = text[end] if end < len(text) else None
        if ch is not None and _escaped(ch):
            if start < end:
                self._write(text[start:end])
            self._write(_escape(ch))
            start = end + 1
        if 0 < end < last and (ch == " " or start >= end) and self.column + (end - start) > self.best_width and split:
            data = text[start:end] + "\\"
            start = max(start, end)
            self._write(data)
            self.write_indent()
            self.whitespace = False
            self.indention = False
            if text[start] == " ":
                self._write("\\")
        return start

    def _write(self, data: str) -> None:
        self.column += len(data)
        self.stream.write(data)


def _indicators(scalar: str) -> tuple[bool, bool]:
    """(flow, block): whether ``scalar`` holds an indicator that rules out a flow or a
    block plain scalar: the document markers, the first character, then the rest."""
    first = scalar[0]
    followed_by_whitespace = len(scalar) == 1 or scalar[1] in _WHITESPACE
    flow = block = scalar.startswith(("---", "..."))
    if first in "#,[]{}&*!|>'\"%@`" or (first == "-" and followed_by_whitespace):
        flow = block = True
    if first in "?:":
        flow = True
        block = block or followed_by_whitespace
    if _FLOW_INDICATOR.search(scalar, 1):
        flow = True
    if _BLOCK_COLON.search(scalar, 1):
        block = True
    if _COMMENT.search(scalar):
        flow = block = True
    return flow, block


def _escaped(ch: str) -> bool:
    return ch in '"\\' or not "\x20" <= ch <= "\x7e"


def _escape(ch: str) -> str:
    if ch in yaml.emitter.Emitter.ESCAPE_REPLACEMENTS:
        return "\\" + yaml.emitter.Emitter.ESCAPE_REPLACEMENTS[ch]
    if ch <= "\xff":
        return f"\\x{ord(ch):02X}"
    if ch <= "\uffff":
        return f"\\u{ord(ch):04X}"
    return f"\\U{ord(ch):08X}"


def dump(data: Any, **style: Any) -> str:
    return yaml.dump(data, Dumper=FastSafeDumper, **style)
