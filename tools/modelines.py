"""Print the config files under FOLDERS whose schema (by modeline, else mixture) is SCHEMA_FILE.

    python -m tools.modelines schema/study.schema.json config

So `make validate` can run an independent validator (check-jsonschema) on each
file against the schema an editor and `olmix validate` would choose for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from olmix.loading.configfiles import config_files
from olmix.loading.validation import schema_of


def main(argv: list[str]) -> int:
    stem = Path(argv[0]).name.removesuffix(".schema.json")
    for path in config_files(argv[1:], recursive=True):
        with path.open("rb") as f:
            if schema_of(f.read(512)) == stem:
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
