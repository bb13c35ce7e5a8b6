"""Regenerate (or, with --check, verify) everything derived from schema/.

    python -m tools.generate PACKAGE_DIR DOCS_DIR [--check] -- CODEGEN_FLAGS...

For each schema/NAME.schema.json: PACKAGE_DIR/NAME.py (pydantic models by
datamodel-code-generator), PACKAGE_DIR/schemas/NAME.schema.json (the copy the
installed package reads) and the reference pages in DOCS_DIR. --check renders
into a temporary folder and fails on any difference, naming the files.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import reference

SCHEMA_DIR = Path("schema")
INIT = '"""Models generated from schema/ by datamodel-code-generator. Do not edit."""\n'


def synced_study_schema() -> str:
    """schema/study.schema.json with its copies of the mixture's fields and definitions brought up to date.

    The study schema is self-contained so that editors and other validators need
    no cross-file references; these copies are the only part of it not written by hand.
    """
    mixture = json.loads((SCHEMA_DIR / "mixture.schema.json").read_text(encoding="utf-8"))
    study = json.loads((SCHEMA_DIR / "study.schema.json").read_text(encoding="utf-8"))
    base = study["$defs"]["Experiment"]["properties"]
    for key in base:
        if key not in ("name", "description"):
            base[key] = mixture["properties"][key]
    study["$defs"].update(mixture["$defs"])
    return json.dumps(study, indent=2, ensure_ascii=False) + "\n"


def render(package: Path, docs: Path, codegen_flags: list[str]) -> None:
    (package / "schemas").mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(INIT)
    codegen = Path(sys.executable).with_name("datamodel-codegen")
    for schema in sorted(SCHEMA_DIR.glob("*.schema.json")):
        stem = schema.name.removesuffix(".schema.json").replace("-", "_")
        shutil.copyfile(schema, package / "schemas" / schema.name)
        cmd = [str(codegen), "--input", str(schema), "--output", str(package / f"{stem}.py")]
        subprocess.run([*cmd, *codegen_flags], check=True)
    reference.render_all(SCHEMA_DIR, docs)


def _files(root: Path) -> set[Path]:
    if not root.exists():
        return set()
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def drift(package: Path, docs: Path, codegen_flags: list[str]) -> list[str]:
    # Inside the repository, so the formatter reads the same pyproject.toml settings.
    with tempfile.TemporaryDirectory(dir=".", prefix=".generate-check-") as tmp:
        fresh_package, fresh_docs = Path(tmp) / "package", Path(tmp) / "docs"
        render(fresh_package, fresh_docs, codegen_flags)
        differ = []
        for have, want in ((package, fresh_package), (docs, fresh_docs)):
            for rel in sorted(_files(have) | _files(want)):
                a, b = have / rel, want / rel
                if not (a.exists() and b.exists() and filecmp.cmp(a, b, shallow=False)):
                    differ.append(str(have / rel))
        return differ


def main(argv: list[str]) -> int:
    sep = argv.index("--") if "--" in argv else len(argv)
    args, flags = argv[:sep], argv[sep + 1 :]
    package, docs = Path(args[0]), Path(args[1])
    study = SCHEMA_DIR / "study.schema.json"
    if "--check" not in args:
        study.write_text(synced_study_schema(), encoding="utf-8")
        render(package, docs, flags)
        return 0
    differ = drift(package, docs, flags)
    if study.read_text(encoding="utf-8") != synced_study_schema():
        differ.insert(0, f"{study} (its copies of the mixture schema's fields)")
    if differ:
        print("generated files differ from schema/ (run `make generate`):", file=sys.stderr)
        for path in differ:
            print(f"  {path}", file=sys.stderr)
        return 1
    print(f"generated code and docs match schema/ ({package}, {docs})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
