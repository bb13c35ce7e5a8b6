"""`make bench`: run every benchmark module olmix/devtools/bench_*.py and print its figures.

A benchmark module has `main() -> None` that prints its figures; adding one is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import olmix.devtools


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(olmix.devtools.__path__) if m.name.startswith("bench_"))
    chosen = [n for n in names if not argv or any(a in n for a in argv)]
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"olmix.devtools.{name}").main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
