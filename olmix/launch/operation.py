"""A launch as one core operation: from a built plan to what would be submitted, then submitted.

`prepare` is the one function a launch and its dry run share: it loads each
run's settings (trainer command, environment, secrets) from the configs the
plan was built from, builds the backend from its own options hook, gathers
the backend's notes, checks the launch with the launcher, and describes what
each run would submit. A dry run stops there (offline: no secret is looked
up and no service is asked); a launch hands the result to `submit`. The CLI
only parses flags and renders what comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from olmix.backends import Backend, RunSpec, for_config
from olmix.launch import launcher

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan

    from olmix.planning.plan import Built


@dataclass(frozen=True)
class Description:
    """What the backend would submit for one run (a batch script, a spec); offline tokens show as TOKEN."""

    run: str
    text: str


FLOPS_PER_PARAMETER_TOKEN = 6
"""Training FLOPs per parameter per token: 6·N·D (forward and backward passes of a dense transformer)."""


@dataclass(frozen=True)
class RunCost:
    """What one run costs to train: its tokens and FLOPs (6·N·D, N the proxy model's parameters)."""

    run: str
    model: str
    parameters: int
    tokens: int

    @property
    def flops(self) -> int:
        return FLOPS_PER_PARAMETER_TOKEN * self.parameters * self.tokens


@dataclass(frozen=True)
class Cost:
    """A launch's cost, run by run and for the group. GPU-hours need a measured throughput for the hardware
    the runs go to, which neither the config nor the catalogue states yet: none is shown, none is guessed."""

    runs: list[RunCost]

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.runs)

    @property
    def flops(self) -> int:
        return sum(r.flops for r in self.runs)


def cost(plan: LaunchPlan) -> Cost:
    """The cost of training every run of `plan`, from the catalogue's parameter counts."""
    from olmix import catalogue

    return Cost([RunCost(r.name, r.model, catalogue.parameters(r.model), r.requested_tokens) for r in plan.runs])


@dataclass(frozen=True)
class Launch:
    """A checked launch: the plan, how its runs run, the backend and what it would submit."""

    plan: LaunchPlan
    settings: launcher.RunSettings
    backend: Backend
    request: launcher.LaunchRequest
    notes: list[str]
    descriptions: list[Description]
    together: str | None  # what submits the runs together (a job array), where they are
    offline: bool
    retrying: list[str] = field(default_factory=list)  # runs a retry submits again (failed or cancelled)

    @property
    def group(self) -> str:
        return self.plan.group

    @property
    def cost(self) -> Cost:
        return cost(self.plan)


def prepare(
    built: Built,
    *,
    backend: str,
    runs_dir: Path,
    trainer_command: str | None = None,
    max_parallel: int | None = None,
    group: str | None = None,
    offline: bool = False,
    retry_failed: bool = False,
) -> Launch:
    """Check a launch of a built plan on `backend` and describe it; `offline` (a dry run) asks no service and looks
    up no secret. Writes nothing, submits nothing."""
    from olmix.planning.planfile import plan_data

    plan = built.plan
    settings = launcher.run_settings(plan, built.configs, trainer_command)
    engine, options = for_config(backend, settings.configs[0], max_parallel)
    notes = sorted({note for config in settings.configs for note in engine.check(config)})
    if max_parallel is not None and not engine.takes_max_parallel:
        notes.append(f"--max-parallel is for the local and slurm backends; {backend} schedules the runs itself")
    notes += engine.check_runs_dir(runs_dir)
    request = launcher.prepare(
        plan_data(plan),
        settings.config_path,
        engine,
        runs_dir,
        options=options,
        command=settings.command if trainer_command is not None else None,
        default_command=settings.command,
        env=settings.env,
        secrets=settings.secrets,
        group=group,
        offline=offline,
        retry=retry_failed,
    )
    together = len(request.runs) > 1 and engine.submits_together
    specs = [
        RunSpec(
            group=request.group,
            run=run.name,
            run_dir=run.run_dir,
            plan_file=run.plan_file,
            command=run.command,
            token=f"TOKEN.{i}" if together else "TOKEN",  # drawn at submission
            env=request.env,
            secrets=request.secrets,
        )
        for i, run in enumerate(request.runs)
    ]
    texts, trailer = engine.describe_many(specs)
    descriptions = [Description(s.run, t) for s, t in zip(specs, texts, strict=True) if t is not None]
    retrying = launcher.to_retry(request.group_dir, engine) if retry_failed and not offline else []
    return Launch(plan, settings, engine, request, notes, descriptions, trailer, offline, retrying)


def submit(
    launch: Launch, on_submit: Callable[[launcher.Submitted], None] = lambda s: None
) -> list[launcher.Submitted]:
    """Submit every run of a prepared launch not yet submitted (exactly once each)."""
    if launch.offline:
        raise launcher.LaunchError("a dry run's launch is not submitted; prepare it again without offline")
    return launcher.submit(launch.request, launch.backend, on_submit)
