"""The local backend made as slow as a cluster's: for tests of processes racing on one launch record.

A cluster's or a network filesystem's status call can take seconds; a record
read before it and saved after it is old by then. SlowBackend answers status
after `delay_s`, or, given a `gate` file, only once the gate exists (after
creating `<gate>.waiting`, so a test knows the call is under way): a test
can then run a whole resume inside one status call. Given a `submit_gate`,
its first submission starts the run and then waits the same way before it
answers the job id: a submission in flight, as a slow sbatch's. Every real
submission is appended to the `submissions` file, so a test counts them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from olmix.backends import RunSpec, Status
from olmix.backends.local import LocalBackend


class SlowBackend(LocalBackend):
    def __init__(
        self,
        submissions: str,
        delay_s: float = 0.0,
        gate: str | None = None,
        submit_gate: str | None = None,
        **options: int,
    ) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.submissions = Path(submissions)
        self.delay_s = delay_s
        self.gate = Path(gate) if gate else None
        self.submit_gate = Path(submit_gate) if submit_gate else None

    def submit(self, spec: RunSpec) -> str:
        job_id = super().submit(spec)
        fd = os.open(self.submissions, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{spec.run}\n".encode())
        finally:
            os.close(fd)
        if self.submit_gate is not None:
            gate, self.submit_gate = self.submit_gate, None
            _wait(gate)
        return job_id

    def status(self, job_id: str, run_dir: Path) -> Status:
        if self.gate is not None:
            _wait(self.gate)
        time.sleep(self.delay_s)
        return super().status(job_id, run_dir)


def _wait(gate: Path) -> None:
    Path(f"{gate}.waiting").touch()
    while not gate.exists():
        time.sleep(0.01)


def submissions(path: Path) -> list[str]:
    return sorted(path.read_text().split()) if path.exists() else []
