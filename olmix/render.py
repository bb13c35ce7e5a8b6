"""The text forms of olmix's results: a table for a terminal, JSON and CSV for programs and files.

Commands hand their rows or documents here rather than laying them out
themselves, so every table escapes the same way (olmix.terminal), every JSON
document refuses the same values (NaN and infinity, which JSON has not), and
every CSV cell a spreadsheet could take for a formula is defused the same way.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence

from olmix.terminal import Lines, escape

# A spreadsheet evaluates a cell that starts with one of these as a formula (=HYPERLINK(...), +cmd|...).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A cell is defused with a quote in front. Text that already starts with quotes before one of the prefixes gets
# one more, so reading back (strip one quote where quotes precede a prefix) gives every cell exactly as it was.
_DEFUSE = re.compile("'*[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
_UNDEFUSE = re.compile("'+[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
GAP = "  "


def table(
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    align: str = "",
    rule: bool = False,
    footer: Sequence[object] | None = None,
) -> Lines:
    """Columns padded to their widest cell, two spaces apart, every cell escaped for the terminal.

    `align` has one letter per column, `l` (the default for a column it does
    not cover) or `r`. With `rule`, a line of dashes sits under the header and,
    when there is a `footer` row, above it. A line ends with its last cell's
    text: only the padding olmix adds is left off.
    """
    body = [[escape(str(cell)) for cell in row] for row in rows]
    head = [escape(str(cell)) for cell in header]
    foot = None if footer is None else [escape(str(cell)) for cell in footer]
    every = [head, *body, *([foot] if foot is not None else [])]
    widths = [max(len(row[i]) for row in every) for i in range(len(head))]
    right = [i < len(align) and align[i] == "r" for i in range(len(head))]

    def line(cells: list[str]) -> str:
        last = max((i for i, cell in enumerate(cells) if cell), default=-1)
        padded = [
            cell.rjust(width) if flush_right else cell if i == last else cell.ljust(width)
            for i, (cell, width, flush_right) in enumerate(zip(cells, widths, right, strict=True))
        ]
        return GAP.join(padded[: last + 1])

    dashes = GAP.join("-" * width for width in widths)
    lines = [line(head), *([dashes] if rule else []), *(line(row) for row in body)]
    if foot is not None:
        lines += [*([dashes] if rule else []), line(foot)]
    return Lines("\n".join(lines))


def to_json(data: object) -> Lines:
    """`data` as indented JSON, keys in the order given; ValueError for NaN or infinity, which JSON has not.

    Every character outside printable ASCII is a JSON escape, so its lines are safe to show as they are.
    """
    return Lines(json.dumps(data, indent=2, allow_nan=False))


def defused(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, with a quote in front; numbers and other text unchanged."""
    if isinstance(value, str) and _DEFUSE.match(value):
        return "'" + value
    return value


def undefused(cell: str) -> str:
    """The text defused() was given: one quote less where quotes stand before a formula's first character."""
    return cell[1:] if _UNDEFUSE.match(cell) else cell


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A header line and one line per row; None is an empty cell, a float is written exactly (repr).

    Every CSV olmix writes is written here, and every text cell, the header's included, is passed through
    defused(): a file a person opens runs nothing, and read_csv() gives back the text as it was.
    """
    lines = [_csv_line(header)]
    lines += [_csv_line(row) for row in rows]
    return "".join(lines)


def read_csv(text: str) -> list[list[str]]:
    """The rows of a CSV text, every cell undefused (what to_csv() wrote, read back as it was given)."""
    import csv

    return [[undefused(cell) for cell in row] for row in csv.reader(io.StringIO(text, newline=""))]


def _csv_line(row: Sequence[object]) -> str:
    # Written with "\r\n" and ended with "\n": the csv module quotes a cell holding a character of the
    # line terminator, and with "\n" alone a lone "\r" in a cell would go unquoted and split the line.
    import csv  # only CSV output needs it

    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([defused(cell) for cell in row])
    return out.getvalue()[: -len("\r\n")] + "\n"
