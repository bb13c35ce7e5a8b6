"""Run olmix.launch.launcher.launch in this process and SIGKILL it at a chosen point.

    python tests/support/launch_killer.py ARGS_JSON

ARGS_JSON: {"plan", "config", "output", "command", "kill": [where, n], "backend"?, "options"?}, where is
"before-submit" (record says submitting, nothing started), "after-submit"
(started, record not yet updated) or "mid-save" (a record temp file written,
not yet renamed into place), n counts calls from 1. A backend's `submit_many`
(many runs in one call, as a job array) counts as one submit call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from olmix import backends, fileio
from olmix.launch import launcher


def killed(args: dict[str, Any], **run: Any) -> None:
    """Run this harness on `args` in a new process and check that it was killed where asked (`run`: more
    subprocess.run options, such as env or timeout)."""
    argv = [sys.executable, str(Path(__file__).resolve()), json.dumps(args)]
    proc = subprocess.run(argv, capture_output=True, **run)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def main() -> None:
    args = json.loads(sys.argv[1])
    where, n = args["kill"]
    calls = {"submit": 0, "save": 0}
    backend = backends.get(args.get("backend", "local"), **args.get("options", {}))

    def killing(real: Any) -> Any:
        def submit(spec: Any) -> Any:
            calls["submit"] += 1
            if where == "before-submit" and calls["submit"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            job = real(spec)
            if where == "after-submit" and calls["submit"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return job

        return submit

    real_replace = os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst).name == launcher.RECORD:
            calls["save"] += 1
            if where == "mid-save" and calls["save"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    backend.submit = killing(backend.submit)  # type: ignore[method-assign]
    if backend.submits_together:
        backend.submit_many = killing(backend.submit_many)  # type: ignore[method-assign]
    fileio.os.replace = replace  # type: ignore[attr-defined]
    launcher.launch(args["plan"], Path(args["config"]), backend, Path(args["output"]), command=args["command"])


if __name__ == "__main__":
    main()
