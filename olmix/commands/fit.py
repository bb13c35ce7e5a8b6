"""`olmix fit`: fit the mixing law on a swarm's evidence and propose the mixture to train at scale.

The command exists whatever is installed: numpy and scipy (the `fit` extra)
are imported when it runs, and their absence is one message naming the extra.
"""

from __future__ import annotations

from pathlib import Path

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples, path_map_option, runs_dir_option


def _needs(regression: str) -> None:
    import os

    from olmix.errors import ExtraMissing

    # the fits are many small solves: BLAS threads only contend for the cores (a fit of 64 runs × 8 leaves
    # took 5× longer with them on a loaded 2-core machine); set before numpy loads, and only as a default
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    extra = {"log-linear": "fit", "trees": "fit-trees"}[regression]
    modules = ["numpy", "scipy"] + (["sklearn"] if regression == "trees" else [])
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise ExtraMissing(f"olmix fit --regression {regression} needs {module}", extra) from None


@click.command(
    epilog=examples(
        "olmix fit --group swarm-1a2b3c4d --config swarm.yaml --objective eval:all_web=1 --out fit/",
        "olmix fit --group swarm-1a2b3c4d --objective downstream:arc_easy:bpb=1 --out fit/",
        "olmix fit --ratios ratios.csv --metrics metrics.csv --objective m1=0.5 --objective m2=0.5 --out fit/",
    )
)
@click.option(
    "--group", "groups", multiple=True, help="Launch group whose finished runs are the evidence (repeatable)."
)
@runs_dir_option()
@click.option("--ratios", type=click.Path(dir_okay=False), help="ratios.csv (upstream layout), with --metrics.")
@click.option("--metrics", type=click.Path(dir_okay=False), help="metrics.csv (upstream layout), with --ratios.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option(
    "--regression",
    type=click.Choice(["log-linear", "trees"]),
    default="log-linear",
    show_default=True,
    help="log-linear: the mixing law exp(c) + exp(t·w), exact proposal; trees: gradient-boosted trees "
    "(the fit-trees extra), searched proposal.",
)
@click.option("--kl-reg", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Weight of KL(w ‖ prior).")
@click.option("--repetition-factor", type=click.FloatRange(min=1), help="Cap at the target scale [default: config's].")
@click.option(
    "--config",
    "--target-config",
    "target_config",
    type=click.Path(dir_okay=False),
    help="Mixture config the proposal is written into (its leaves, token counts and caps).",
)
@click.option(
    "--tokens",
    "tokens_csv",
    type=click.Path(dir_okay=False),
    help="tokens.csv (a 'leaf,tokens' header, a row per leaf): the prior and caps of a fit from --ratios.",
)
@click.option(
    "--target-tokens", type=click.IntRange(min=1), help="Tokens of the target run, when no --config sets them."
)
@path_map_option
@click.option(
    "--objective",
    "objective",
    multiple=True,
    metavar="METRIC=WEIGHT",
    help="Objective term (repeatable): heldout:SOURCE, eval:SET, downstream:TASK:bpb or downstream:TASK:error "
    "(1 - accuracy); every metric is minimised [default: all, equal weights].",
)
@click.option("--force", is_flag=True, help="Overwrite files that differ; propose from evidence below the floor.")
@reports_errors
def fit(
    groups: tuple[str, ...],
    runs_dir: Path,
    ratios: str | None,
    metrics: str | None,
    out_dir: str,
    regression: str,
    kl_reg: float,
    repetition_factor: float | None,
    target_config: str | None,
    path_map: list[tuple[str, str]],
    tokens_csv: str | None,
    target_tokens: int | None,
    objective: tuple[str, ...],
    force: bool,
) -> None:
    """Fit how each metric depends on the mixture and propose the mixture that minimises the objective.

    Writes OUT/fit.json (parameters, cross-validated quality, predicted objective
    of the proposal, the prior and the best observed run) and OUT/proposal.yaml
    (a config that validates and launches as is; needs a target config, named with
    --target-config or recorded in the group's plans).
    """
    import sys
    from pathlib import Path

    if bool(groups) == bool(ratios or metrics) or bool(ratios) != bool(metrics):
        raise click.UsageError("give --group G, or --ratios R.csv with --metrics M.csv")
    from olmix import runpaths

    for group in groups:
        runpaths.check_component(group, "--group")  # a group is one folder under --runs-dir, never a path out
    _needs(regression)
    from olmix import fileio
    from olmix.swarm import evidence as evidence_
    from olmix.swarm import loop

    # a flag that cannot apply is refused, never ignored
    if tokens_csv and (groups or target_config):
        raise click.UsageError("--tokens gives the leaves' tokens to a fit from --ratios without --config")
    if target_tokens and target_config:
        raise click.UsageError("--target-tokens: the target config sets the target (target_tokens, target_model_id)")
    if ratios and not target_config and not (tokens_csv and target_tokens):
        for flag, value in (("--repetition-factor", repetition_factor), ("--target-tokens", target_tokens)):
            if value is not None:
                raise click.UsageError(
                    f"{flag} needs the leaves' tokens and the target's: --config, or --tokens with --target-tokens"
                )
    skipped: list[str] = []
    found = evidence_.collect(runs_dir, groups, skipped) if groups else evidence_.from_csv(str(ratios), str(metrics))
    for line in skipped:
        echo(line, err=True)
    for note in found.notes:
        echo(f"note: {note}", err=True)
    config = target_config or next((r.config for r in found.runs if r.config and Path(r.config).is_file()), None)
    target = loop.load_target(config, repetition_factor, path_map) if config else None
    data, files = loop.run(
        found,
        target,
        regression=regression,
        objective_entries=objective,
        kl_reg=kl_reg,
        tokens_of=loop.load_tokens(tokens_csv) if tokens_csv else None,
        target_tokens=target_tokens,
        repetition_factor=repetition_factor,
        force=force,
    )
    for warning in data.get("warnings", []):
        echo(f"WARNING: thin evidence: {warning}", err=True)
    if "uncapped" in data:
        echo(f"note: uncapped: {data['uncapped']}; the proposal may repeat any leaf without limit", err=True)
    for metric, entry in data["metrics"].items():
        cv = entry["cv"]
        echo(
            f"{metric}: cross-validated R² {cv['r2']:.3f}, Spearman {cv['spearman']:.3f}, MAE {cv['mae']:.4g} "
            f"(predicting the mean: {cv['mae_of_mean']:.4g})"
        )
        if noise := entry.get("noise"):
            ceiling = "unknown" if noise["r2_ceiling"] is None else f"{noise['r2_ceiling']:.3f}"
            echo(
                f"{metric}: noise floor from {noise['replicated_mixtures']} replicated mixture(s): "
                f"SD {noise['variance'] ** 0.5:.4g} between replicates, R² ceiling {ceiling}"
            )
    out = Path(out_dir)
    written = fileio.write_all([(out / name, blob) for name, blob in files.items()], force=force)
    for path, what in written:
        echo(f"{what} {path}")
    if data["proposal"] is None:
        echo(f"no proposal: {data['refused']}", err=True)
        sys.exit(1)
    proposal = data["proposal"]
    gap = proposal["optimality_gap"]
    echo(
        f"proposal: predicted objective {proposal['predicted_objective']:.4f} "
        f"(prior {data['prior_predicted_objective']:.4f}, best observed run {data['best_observed']['run']} "
        f"{data['best_observed']['observed_objective']:.4f}); optimality gap "
        + ("unknown (searched)" if gap is None else f"≤ {gap:.2e}")
    )
    if "proposal.yaml" not in files:
        echo("no proposal.yaml: name the mixture to write it into with --target-config", err=True)
