"""Dry run of quality_top30pct.yaml on a local mirror: wall time and peak memory of the whole command.

Goal: ≤ 0.4 s and ≤ 60 MB.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.mirror import make_mirror

SHIPPED = Path("config/examples/launch/quality_thresholds/quality_top30pct.yaml")
RUNS = 5


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = SHIPPED
        path_map = make_mirror(config, Path(tmp) / "mirror")
        olmix = str(Path(sys.executable).with_name("olmix"))
        flags = [f"--path-map={p}={r}" for p, r in path_map]
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        for label, extra in (("cold (--no-cache)", ["--no-cache"]), ("warm cache", [])):
            cmd = [olmix, "launch", "run", "--config", str(config), "--dry-run", *flags, *extra]
            _run(cmd, env)  # fills the cache, warms the OS file cache
            runs = [_run(cmd, env) for _ in range(RUNS)]
            wall = statistics.median(w for w, _ in runs)
            peak = max(m for _, m in runs)
            print(f"dry run {config.name}, {label}: median wall {wall:.3f} s, peak RSS {peak:.1f} MB ({RUNS} runs)")
        help_wall, help_peak = _run([olmix, "launch", "--help"], env)
        print(f"olmix launch --help: wall {help_wall:.3f} s, peak RSS {help_peak:.1f} MB")


if __name__ == "__main__":
    main()
