"""Text from configs, flags and records made safe to show on a terminal.

A name, key, path or value a user's file holds can carry control characters:
an ANSI or OSC escape sequence (clear the screen, set the window title, a
hyperlink that lies), a carriage return that overwrites a line, a newline that
forges one, a bidi override that reorders what is read. Every message the CLI
shows passes through here, and each such character becomes a visible escape
(\\x1b, \\n, \\u202e); printable text, non-ASCII letters included, is unchanged.
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


def escape_lines(text: str) -> str:
    """`text` with its own line breaks kept and every other control character shown as an escape.

    For a message olmix built of several lines; a value interpolated into it
    should be escaped with escape() first, so that its newlines cannot forge a line.
    """
    return "\n".join(escape(line) for line in text.split("\n"))
