"""Text from configs, flags and records made safe to show on a terminal.

A name, key, path or value a user's file holds can carry control characters:
an ANSI or OSC escape sequence (clear the screen, set the window title, a
hyperlink that lies), a carriage return that overwrites a line, a newline that
forges one, a bidi override that reorders what is read. Every message the CLI
shows passes through here, and each such character becomes a visible escape
(\\x1b, \\n, \\u202e); printable text, non-ASCII letters included, is unchanged.

A message is one line: a newline in it came from a value (a file name, a
glob, a group), so it is shown as \\n and can never start a line of its own,
such as a fake "note: all checks passed". Text of several lines is a `Lines`,
which only olmix builds, from values it escaped itself: a table, a JSON
document, a list of lines (`Lines.of`).
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL, C1 controls (CSI is \x9b), the bidi controls, the line and paragraph
# separators, and lone surrogates (undecodable bytes of a file name), which no terminal can print.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` on one line, every control character shown as an escape."""
    return _UNSAFE.sub(_visible, text)


class Lines(str):
    """Text of several lines that olmix laid out, every value in it already escaped (or JSON-encoded)."""

    @classmethod
    def of(cls, *lines: str) -> Lines:
        """Each of `lines` escaped onto its own line."""
        return cls("\n".join(escape(line) for line in lines))


def shown(text: str) -> str:
    """`text` for a terminal: a Lines keeps its line breaks, anything else is one line."""
    return escape_lines(text) if isinstance(text, Lines) else escape(text)


def error_text(text: str) -> str:
    """An error's message: a line break is kept only where it starts an indented line ("\\n  "), the form
    olmix gives a list under a message; any other is a value's, shown as \\n, so no line of it can pass for
    one of olmix's own."""
    return "\n  ".join(escape(part) for part in text.split("\n  "))


def escape_lines(text: str) -> str:
    """`text` with its own line breaks kept and every other control character shown as an escape.

    For a message olmix built of several lines; a value interpolated into it
    should be escaped with escape() first, so that its newlines cannot forge a line.
    """
    return "\n".join(escape(line) for line in text.split("\n"))
