"""One process acting on a launched group, as a user's terminal would, through tests.support.slow_backend.

    python -m tests.support.launch_actor ARGS_JSON

ARGS_JSON: {"action": "launch" | "status" | "cancel", "backend": SlowBackend's arguments,
"group_dir", "runs" (cancel: the runs to cancel), "until" (repeat the action until this file
exists; each time one is done, a line is appended to "done", so a test can wait for a whole one),
and for launch "plan", "config", "output", "command", "kill": [where, n] or null}.
A launch with "kill" SIGKILLs itself at the n-th submission: "before-submit" or "after-submit".
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from olmix.backends import RunSpec
from olmix.launch import launcher
from tests.support.slow_backend import SlowBackend


def act(args: dict[str, Any], backend: SlowBackend) -> None:
    if args["action"] == "status":
        launcher.statuses(Path(args["group_dir"]), backend)
    elif args["action"] == "cancel":
        launcher.cancel(Path(args["group_dir"]), backend, args.get("runs"))
    else:
        launcher.launch(args["plan"], Path(args["config"]), backend, Path(args["output"]), command=args["command"])


def main() -> None:
    args = json.loads(sys.argv[1])
    backend = SlowBackend(**args["backend"])
    if kill := args.get("kill"):
        where, n = kill
        calls = [0]
        real_submit = backend.submit

        def submit(spec: RunSpec) -> str:
            calls[0] += 1
            if where == "before-submit" and calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            job = real_submit(spec)
            if where == "after-submit" and calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return job

        backend.submit = submit  # type: ignore[method-assign]
    until = Path(args["until"]) if args.get("until") else None
    while True:
        act(args, backend)
        if args.get("done"):
            with open(args["done"], "a") as done:
                done.write("done\n")
        if until is None or until.exists():
            return


if __name__ == "__main__":
    main()
