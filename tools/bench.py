"""`make bench`: run every tools/bench_*.py module's main() and print its figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import tools


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(tools.__path__) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    for name in wanted:
        print(f"== {name.removeprefix('bench_')}", flush=True)
        importlib.import_module(f"tools.{name}").main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
