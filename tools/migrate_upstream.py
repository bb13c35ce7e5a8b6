"""How many of the upstream olmix's configs `olmix migrate` brings in, and why the rest do not.

    python -m tools.migrate_upstream PATH/TO/olmix-checkout

Runs the migration over every YAML file under the checkout's configs/, writes
the results to a temporary folder, validates each written file on its own,
and prints the figure the README quotes: per kind, how many migrate and
validate, and for each file that does not, why; then the notes, grouped by
field.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

from olmix import fileio
from olmix.errors import format_path
from olmix.loading.validation import validate_file
from olmix.migrate import migrate


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "configs").is_dir():
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    configs = Path(argv[0]) / "configs"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        outcome = migrate([str(configs)], out)
        fileio.write_all(outcome.files)
        valid = {str(path) for path, _ in outcome.files if not validate_file(path).problems}
        total = len(list(configs.rglob("*.y*ml")))
        kinds = Counter(r.kind for r in outcome.results)
        print(f"{total} upstream configs: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
        print(f"{len(valid)} migrate to mixture configs that validate")
        for result in outcome.results:
            if result.fit_command is not None:
                name = Path(result.source).relative_to(configs)
                print(f"  not a config: {name} (a fit config: `{' '.join(result.fit_command)}`)")
        for problem in outcome.problems:
            print(f"  refused: {problem}")
        # a note's kind: its field without list indices, its message without the names and numbers in it
        grouped = Counter(
            re.sub(r"\[\d+\]", "[i]", format_path(p.path)) + ": " + re.sub(r"'[^'\s]*'|\b\d[\d.]*\b", "…", p.message)
            for r in outcome.results
            for p in r.notes
        )
        print(f"{sum(grouped.values())} notes:")
        for text, count in grouped.most_common():
            print(f"  {count:3d} × {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
