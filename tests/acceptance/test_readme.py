"""Every command block of README.md runs as shown, or is marked and checked for syntax.

The README's ```sh blocks are found here by themselves, so a new block is tested without a change to this file. An
HTML comment on the line before a block says how it is tested:

- none: the block runs (bash, in a copy of the project with the demo corpus), in the fast set;
- `<!-- readme: slow -->`: it runs, marked slow (it trains or launches);
- `<!-- readme: syntax -->`: it needs a cluster, credentials or files of your own; every `olmix` command in it must
  resolve (the command exists, every option does, the arguments parse), every `make` target exist;
- `<!-- readme: file PATH -->` before any block: its text is written to PATH before the next sh block runs;
- `<!-- readme: output -->` before a plain block: what the sh block before it prints (stdout and stderr), with group
  ids, times and the project's path masked; a `...` line stands for any lines.

A block that runs without an output block must exit 0. Placeholders look like placeholders (`<GROUP>`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from olmix.cli import main
from tests.conftest import REPO

README = REPO / "README.md"
MARKER = re.compile(r"<!--\s*readme:\s*(.*?)\s*-->")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Block:
    lang: str
    text: str
    line: int
    marker: str
    output: str | None = None


def blocks(text: str = "") -> list[Block]:
    lines = (text or README.read_text(encoding="utf-8")).splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            before = next((line for line in reversed(lines[:i]) if line.strip()), "")
            marked = MARKER.search(before)
            found.append(Block(lang, "\n".join(lines[i + 1 : j]) + "\n", i + 1, marked.group(1) if marked else ""))
            i = j + 1
        else:
            i += 1
    for k, block in enumerate(found):
        if block.marker == "output":
            shell = [b for b in found[:k] if b.lang == "sh"]
            assert shell, f"README.md:{block.line}: an output block with no sh block before it"
            shell[-1].output = block.text
    return found


SH = [b for b in blocks() if b.lang == "sh"]


def _id(block: Block) -> str:
    return f"line{block.line}"


def prelude(block: Block) -> str:
    """The variables every sh block before this one sets, and what it sets up (`[ -d X ] || ...`), as a reader who
    ran them has them."""
    out = []
    for earlier in SH:
        if earlier.line >= block.line:
            break
        out += [line for line in earlier.text.splitlines() if ASSIGNMENT.match(line) or line.startswith("[ ")]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the README's commands read: the configs, schemas and the virtual environment (linked)."""
    root = tmp_path_factory.mktemp("readme") / "olmix"
    root.mkdir()
    shutil.copytree(REPO / "config", root / "config")
    for name in (".venv", "schema", "tests", "tools", "Makefile", "pyproject.toml", "olmix", "generated"):
        (root / name).symlink_to(REPO / name)
    return root


def write_files(block: Block, root: Path) -> None:
    """The files the README writes between the sh block before this one and this one."""
    before = [b.line for b in SH if b.line < block.line]
    for one in blocks():
        if one.marker.startswith("file ") and max(before, default=0) < one.line < block.line:
            path = root / one.marker.removeprefix("file ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(one.text, encoding="utf-8")


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLMIX_")}
    env.update(HOME=str(root / "home"), XDG_CACHE_HOME=str(root / "cache"), PWD=str(root))
    return env


def masked(text: str, root: Path) -> list[str]:
    text = text.replace(str(root), "$PWD").replace(str(REPO), "$PWD")
    text = re.sub(r"-[0-9a-f]{8}\b", "-<ID>", text)
    text = re.sub(r"\b\d+(\.\d+)? ?(ms|s)\b", "<T>", text)
    return [line.rstrip() for line in text.splitlines()]


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; a `...` line in `expected` matches any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def run_block(block: Block, root: Path) -> None:
    write_files(block, root)
    script = ("" if block.output is not None else "set -e\n") + prelude(block) + block.text
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=root,
        env=environment(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # as a terminal shows them
        text=True,
        check=False,
    )
    out = done.stdout
    assert "Traceback" not in out, out
    if block.output is None:
        assert done.returncode == 0, f"README.md:{block.line}: exit {done.returncode}\n{out}"
    else:
        expected, actual = masked(block.output, root), masked(out, root)
        assert matches(expected, actual), f"README.md:{block.line} prints:\n" + "\n".join(actual)


RUN = [pytest.param(b, id=_id(b)) for b in SH if b.marker == ""]
SLOW = [pytest.param(b, id=_id(b), marks=pytest.mark.slow) for b in SH if b.marker == "slow"]


@pytest.mark.parametrize("block", RUN + SLOW)
def test_block_runs_as_shown(block: Block, project: Path) -> None:
    run_block(block, project)


def commands(block: Block, root: Path) -> Iterator[list[str]]:
    """Each command of the block as words, its variables expanded, placeholders kept as words."""
    variables = dict(environment(root))
    for line in prelude(block).splitlines():
        if not ASSIGNMENT.match(line):
            continue
        name, _, value = line.partition("=")
        variables[name] = expand(" ".join(shlex.split(value, comments=True)), variables)
    logical = block.text.replace("\\\n", " ")
    for line in logical.splitlines():
        if not line.strip() or ASSIGNMENT.match(line) or line.startswith("[ "):
            continue
        words: list[str] = []
        for word in shlex.split(line, comments=True):
            if re.fullmatch(r"\$[A-Za-z_]+", word):
                words += shlex.split(variables.get(word[1:], word))
            else:
                words.append(expand(word, variables))
        while "|" in words:  # `yes | olmix ...`: the command after the pipe
            words = words[words.index("|") + 1 :]
        yield words


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_]+)\}?", lambda m: variables.get(m.group(1), m.group(0)), text)


def resolve(args: list[str]) -> None:
    """Parse `olmix ARGS` as click would run it, down to the command, without running it."""
    ctx = main.make_context("olmix", list(args))
    command: click.Command = main
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub


SYNTAX = [pytest.param(b, id=_id(b)) for b in SH if b.marker == "syntax"]


@pytest.mark.parametrize("block", SYNTAX)
def test_marked_block_parses(block: Block, project: Path) -> None:
    for words in commands(block, project):
        program = Path(words[0]).name
        where = f"README.md:{block.line}: {shlex.join(words)}"
        if program == "olmix":
            try:
                resolve(words[1:])
            except click.ClickException as exc:
                pytest.fail(f"{where}: {exc.format_message()}")
        elif program == "make":
            done = subprocess.run(["make", "-n", *words[1:]], cwd=REPO, capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"{where}: {done.stderr}"
        elif words[:3] == [".venv/bin/python", "-m", "olmix.train"]:
            from olmix.train import main as train

            try:
                train.make_context("olmix.train", words[3:])
            except click.ClickException as exc:
                pytest.fail(f"{where}: {exc.format_message()}")
        else:
            pytest.fail(f"{where}: a command this test cannot check; run it, or check it here")


def test_every_block_is_run_or_marked() -> None:
    known = {"", "slow", "syntax"}
    assert SH, "README.md has no sh block"
    for block in SH:
        assert block.marker in known, f"README.md:{block.line}: unknown marker {block.marker!r}"
        if block.marker == "syntax":
            assert block.output is None, f"README.md:{block.line}: an output block for a block that does not run"


def test_placeholders_look_like_placeholders() -> None:
    for block in SH:
        for word in re.findall(r"--group[ =](\S+)", block.text):
            assert word.startswith("<") or word.startswith("$"), f"README.md:{block.line}: --group {word}"


def _glob(pattern: str) -> re.Pattern[str]:
    out = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
    return re.compile(out + "$")


def test_editor_settings_cover_every_config_the_readme_has_users_write() -> None:
    settings = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    mixture = [_glob(p) for p in settings["yaml.schemas"]["./schema/mixture.schema.json"]]
    written: list[str] = [b.marker.removeprefix("file ").strip() for b in blocks() if b.marker.startswith("file ")]
    for block in SH:
        for words in commands(block, REPO):
            if Path(words[0]).name != "olmix" or len(words) < 2:
                continue
            if words[1] in ("generate", "migrate") and "--out" in words:
                written.append(words[words.index("--out") + 1].rstrip("/") + "/x.yaml")
            written += [w for w in words if w.endswith(".yaml") and not w.startswith(("config/studies/", "../"))]
    assert written
    for path in written:
        assert any(g.match(path) for g in mixture), f"{path}: no yaml.schemas glob of .vscode/settings.json maps it"
