"""The process that owns one local run: `python -m olmix.backends.local_runner`.

Started detached (its own session and process group) by the local backend, it
    1. writes job.json (pid, token) so the run can be found after the launcher is gone;
    2. waits for one of --max-parallel slots (flock on files shared by the group);
    3. runs the trainer in its process group, its output into train.log with the
       values of --secret variables masked in the byte stream (olmix.backends.secrets);
    4. writes exit.json (exit code, times, whether it was cancelled).
SIGTERM (from `olmix launch cancel`) stops the trainer and records the cancellation.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from olmix.backends import run_file
from olmix.backends.secrets import Masker, variants
from olmix.fileio import write_json_atomic

CHUNK = 1 << 16


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.run_dir = Path(args.run_dir)
        self.args = args
        self.cancelled = False
        self.child: subprocess.Popen[bytes] | None = None
        self.secrets = [v for name in args.secret if (raw := os.environ.get(name)) for v in variants(os.fsencode(raw))]

    def on_term(self, signum: int, frame: object) -> None:
        self.cancelled = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def acquire_slot(self) -> IO[bytes] | None:
        slots = Path(self.args.slots_dir)
        slots.mkdir(parents=True, exist_ok=True)
        while not self.cancelled:
            for i in range(self.args.max_parallel):
                handle = open(slots / f"slot-{i}.lock", "ab")  # noqa: SIM115 - held for the run's life
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return handle
                except BlockingIOError:
                    handle.close()
            time.sleep(0.1)
        return None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        job = {"token": self.args.token, "pid": os.getpid(), "pgid": os.getpgid(0), "queued_at": time.time()}
        write_json_atomic(self.run_dir / "job.json", job)
        # A cancel that came before job.json told it whom to signal left cancel.json naming this process.
        self.cancelled = self.cancelled or (run_file(self.run_dir / "cancel.json") or {}).get("pid") == os.getpid()
        slot = self.acquire_slot()
        exit_code: int | None = None
        started = time.time()
        if slot is not None and not self.cancelled:
            write_json_atomic(self.run_dir / "started.json", {"started_at": started})
            exit_code = self.train()
        write_json_atomic(
            self.run_dir / "exit.json",
            {"exit_code": exit_code, "started_at": started, "finished_at": time.time(), "cancelled": self.cancelled},
        )
        return 0

    def train(self) -> int:
        with open(self.run_dir / "train.log", "ab") as log:
            try:
                self.child = subprocess.Popen(
                    self.args.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.args.cwd
                )
            except OSError as exc:
                log.write(f"olmix: cannot start the trainer {self.args.command[0]!r}: {exc.strerror}\n".encode())
                return 127
            assert self.child.stdout is not None
            masker = Masker(self.secrets)
            while chunk := os.read(self.child.stdout.fileno(), CHUNK):
                log.write(masker.feed(chunk))
                log.flush()
            log.write(masker.close())
            return self.child.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="olmix.backends.local_runner")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--slots-dir", required=True)
    parser.add_argument("--max-parallel", type=int, default=1)
    parser.add_argument("--cwd", default=None)
    parser.add_argument("--secret", action="append", default=[])
    parser.add_argument("command", nargs="+")
    return Runner(parser.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
