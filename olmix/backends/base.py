"""What every backend does, and every optional hook with its default.

A backend is a subclass of Backend: it must start a run (`submit`), find a
run it may already have started by its submission token (`find`), report a
run's state (`status`) and stop it (`cancel`). Everything else is declared
here with a default that is right for a backend without the capability, so
the launcher calls hooks and never probes for them:

- `options_from_config`: the options a config's settings make (recorded with
  the launch, so `status` and `cancel` build the same backend again);
- `check`, `check_command`, `check_trainer`, `preflight`: what a launch
  checks before it writes or submits anything;
- `submits_together` with `submit_many`: runs submitted in one call (a job
  array); `find_many`, `statuses`, `cancel_many`: one query for many runs;
- `describe`, `describe_many`: what a dry run shows of a submission;
- `url`: a run's page, where the engine has one;
- `check_runs_dir`: notes about the runs folder a launch writes to (Slurm: the compute nodes must share it);
- `fetch_results`: bring a finished run's metrics.json into its folder, where the engine keeps it elsewhere
  (Beaker: the run's result dataset); the local and Slurm backends' runs write it there themselves;
- `secrets_from_environment`: whether secrets are read from this environment
  (Beaker's are its own, named in the spec);
- `takes_max_parallel`: whether `--max-parallel` means anything to it;
- `reuses_tokens`: whether its job names are unique on the service, so a
  submission that went unanswered is made again under the same token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from olmix.backends.types import RunSpec, Status


class Backend:
    name: ClassVar[str] = ""
    secrets_from_environment: ClassVar[bool] = True
    submits_together: ClassVar[bool] = False
    takes_max_parallel: ClassVar[bool] = True
    reuses_tokens: ClassVar[bool] = False  # job names unique on the service: a lost submission goes again as is

    @classmethod
    def options_from_config(cls, config: Any, max_parallel: int | None = None) -> dict[str, Any]:
        """The options this backend takes from a validated config (and --max-parallel)."""
        return {}

    # -- checks before anything is written ------------------------------------------------------------------

    def check(self, config: Any) -> list[str]:
        """Notes about settings this backend ignores; raise BackendError when it cannot run them."""
        return []

    def check_command(self, command: list[str]) -> None:
        """Raise BackendError when this backend could not start `command` (say, its program is missing)."""

    def check_trainer(self, command: list[str]) -> None:
        """Raise ExtraMissing when the trainer `command` could not start where this backend runs it for want of an
        extra (olmix.train without the `train` extra); a backend that cannot look there checks nothing."""

    def preflight(self, secrets: list[str]) -> None:
        """Ask the engine, before anything is written, whether it will take these runs (a service's answer)."""

    def check_runs_dir(self, runs_dir: Path) -> list[str]:
        """Notes about the runs folder: where the runs read their plans and write their metrics."""
        return []

    # -- submitting -------------------------------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> str:
        """Start the run; return its job id."""
        raise NotImplementedError

    def submit_many(self, specs: Sequence[RunSpec]) -> list[str]:
        """The runs in one call, all or none, run i with the token `<T>.<i>`, each found again by `find` with its
        own token (Slurm: one job array). Only called where `submits_together` is set."""
        raise NotImplementedError(f"the {self.name} backend submits runs one by one")

    def find(self, spec: RunSpec) -> str | None:
        """The job id of a run already started with spec.token, if any."""
        raise NotImplementedError

    def find_many(self, specs: Sequence[RunSpec]) -> list[str | None]:
        """`find` for each of `specs`, in order (a cluster answers them in one query)."""
        return [self.find(spec) for spec in specs]

    def url(self, job_id: str) -> str | None:
        """The run's page, where the engine has one."""
        return None

    # -- after ------------------------------------------------------------------------------------------------

    def status(self, job_id: str, run_dir: Path) -> Status:
        raise NotImplementedError

    def statuses(self, jobs: list[tuple[str, Path]]) -> list[Status]:
        """The status of each (job id, run folder), in order: one query for a group's runs where it can."""
        return [self.status(job_id, run_dir) for job_id, run_dir in jobs]

    def cancel(self, job_id: str, run_dir: Path) -> None:
        raise NotImplementedError

    def cancel_many(self, jobs: list[tuple[str, Path]]) -> None:
        """Cancel each (job id, run folder): at once where the engine can."""
        for job_id, run_dir in jobs:
            self.cancel(job_id, run_dir)

    def fetch_results(self, run_dir: Path, job_id: str) -> str | None:
        """Bring run `job_id`'s metrics.json into `run_dir` (or keep the copy there, when it is current); a note
        saying why there is none, else None. Nothing to do where runs write into their folders themselves."""
        return None

    # -- what a dry run shows ---------------------------------------------------------------------------------

    def describe(self, spec: RunSpec) -> str | None:
        """What this backend would submit for `spec`, as text (a batch script, a spec); None: nothing to show."""
        return None

    def describe_many(self, specs: Sequence[RunSpec]) -> tuple[list[str | None], str | None]:
        """Each run's description and, for runs submitted together, what submits them (None: nothing)."""
        return [self.describe(spec) for spec in specs], None
