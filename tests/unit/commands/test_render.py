"""The one renderer family: tables for a terminal, JSON and CSV; expected texts written out by hand."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pytest

from olmix import render


def test_a_table_pads_columns_to_their_widest_cell_two_spaces_apart() -> None:
    text = render.table(["run", "state"], [["a", "succeeded"], ["long-name", "failed"]])
    assert text == "run        state\na          succeeded\nlong-name  failed"


def test_right_aligned_columns_a_rule_and_a_footer() -> None:
    text = render.table(
        ["leaf", "tokens", "cap"],
        [["arxiv", "1,000", "2"], ["wiki", "30", "1.5"]],
        align="lrr",
        rule=True,
        footer=["total", "1,030", ""],
    )
    assert text.split("\n") == [
        "leaf   tokens  cap",
        "-----  ------  ---",
        "arxiv   1,000    2",
        "wiki       30  1.5",
        "-----  ------  ---",
        "total   1,030",
    ]


def test_a_line_ends_with_its_last_cell_not_with_padding() -> None:
    text = render.table(["a", "b", "c"], [["x", "", ""], ["", "yy", "zzz"], ["", "", ""]])
    assert text.split("\n") == ["a  b   c", "x", "   yy  zzz", ""]


def test_every_cell_is_escaped_for_the_terminal_and_measured_escaped() -> None:
    text = render.table(["name\x1b[2J", "n"], [["x\ry", 1], ["\u202eevil", 22]])
    assert text.split("\n") == [
        "name\\x1b[2J  n",
        "x\\ry         1",
        "\\u202eevil   22",
    ]


def test_json_is_indented_keeps_key_order_and_escapes_control_characters() -> None:
    assert render.to_json({"b": 1, "a": ["x\x1b"]}) == '{\n  "b": 1,\n  "a": [\n    "x\\u001b"\n  ]\n}'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_refuses_what_json_has_not(value: float) -> None:
    with pytest.raises(ValueError, match="JSON"):
        render.to_json({"loss": value})


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ],
)
def test_csv_defuses_text_a_spreadsheet_would_run(cell: str, written: str) -> None:
    rows = list(csv.reader(io.StringIO(render.to_csv(["run"], [[cell]]), newline="")))
    assert rows == [["run"], [written]]


def test_csv_numbers_stay_numbers_and_none_is_empty() -> None:
    text = render.to_csv(["run", "change", "steps", "loss"], [["r", -0.25, -3, None]])
    assert text == "run,change,steps,loss\nr,-0.25,-3,\n"


def test_csv_floats_are_written_exactly() -> None:
    value = 0.1 + 0.2
    rows = list(csv.reader(io.StringIO(render.to_csv(["x"], [[value]]))))
    assert float(rows[1][0]) == value


@pytest.mark.parametrize(
    "cell",
    ["-x", "=1+1", "'=1+1", "''@x", "'", "'plain", "''", "\r=", "a\rb", "\t", "", 'run, "quoted"\nline'],
)
def test_csv_reads_back_every_cell_as_it_was_written(cell: str) -> None:
    assert render.read_csv(render.to_csv([cell, "n"], [[cell, -1.5]])) == [[cell, "n"], [cell, "-1.5"]]


def test_every_csv_olmix_writes_goes_through_the_one_writer() -> None:
    # the csv module anywhere else, or cells joined with commas by hand in a module about CSV, would write
    # cells undefused
    package = Path(render.__file__).parent
    others = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        if path.name != "render.py" and (
            re.search(r"^\s*(import csv|from csv import)", text, re.M)
            or ("csv" in text.lower() and re.search(r"[\"'],[\"']\s*\.join", text))
        ):
            others.append(str(path.relative_to(package)))
    assert others == []


def test_csv_quotes_a_cell_with_a_carriage_return_so_the_line_stays_whole() -> None:
    text = render.to_csv(["run", "n"], [["a\rb", 1]])
    assert text == 'run,n\n"a\rb",1\n'
