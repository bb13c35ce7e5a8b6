""" "Did you mean …?" for a name that is not one of the allowed ones.

A suggestion compares the name with every allowed one (difflib: quadratic in
their lengths), so it is computed only where it can help: for a name of a
plausible length, never the name itself, and, within one input, for its first
`PER_INPUT` mistakes only. A file of 100,000 unknown keys is then checked in
time proportional to its size; its first mistakes still carry their hint.
"""

from __future__ import annotations

from collections.abc import Iterable

CUTOFF = 0.6  # difflib's similarity a likely typo reaches
MAX_NAME = 200  # characters: no name olmix knows is near this long, and a longer one is no typo of it
PER_INPUT = 50  # suggestions computed for one file (or one command's flags); later mistakes get none


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The allowed name nearest to `word`, if one is close enough to be a likely typo (never `word` itself)."""
    import difflib

    if len(word) > MAX_NAME:
        return None
    candidates = [c for c in choices if c != word and len(c) <= MAX_NAME]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=CUTOFF)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str], *, shown: str = "'{}'", otherwise: str = "") -> str:
    """ "; did you mean 'x'?" for the nearest allowed name, else `otherwise` ("" unless given).

    `shown` places the name in the hint (a placeholder is shown as '{x}').
    """
    near = nearest(word, choices)
    return f"; did you mean {shown.format(near)}?" if near is not None else otherwise


class Hints:
    """The hints of one input: at most `limit` are computed, the rest of its mistakes get none.

    `computed` counts them (what a test of the bound reads).
    """

    def __init__(self, limit: int = PER_INPUT) -> None:
        self.limit = limit
        self.computed = 0

    def did_you_mean(self, word: str, choices: Iterable[str], *, shown: str = "'{}'", otherwise: str = "") -> str:
        """As the module's did_you_mean, while the budget lasts; "" after it."""
        if self.computed >= self.limit:
            return ""
        self.computed += 1
        return did_you_mean(word, choices, shown=shown, otherwise=otherwise)
