"""`make demo-swarm` helpers: the uniform mixture to train beside the proposal, and the verdict.

    python -m tools.demo_swarm uniform CONFIG OUT.yaml
    python -m tools.demo_swarm compare SWARM_RUNS FINAL_RUNS FIT_JSON

`compare` scores every finished run with the fit's objective (its metric
weights applied to the observed metrics) and prints whether the proposal
beats the uniform mixture and the swarm's best run, with the numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path


def uniform(config: str, out: str) -> None:
    from olmix import yamlwrite
    from olmix.fileio import write_atomic
    from olmix.leaves import leaves
    from olmix.loading.config import load_document
    from olmix.swarm.configs import with_weights
    from olmix.swarm.loop import node_shares

    doc, model = load_document(config, "mixture")
    names = [leaf.name for leaf in leaves(model)]
    data = with_weights(doc.data, node_shares(doc.data, dict.fromkeys(names, 1 / len(names))))
    data["name"], data["variants"] = f"{model.name}-uniform", 1
    write_atomic(out, yamlwrite.dump(data).encode("utf-8"))


def _scores(runs_dir: str, objective: dict[str, float]) -> dict[str, float]:
    from olmix.swarm.evidence import read_run

    out = {}
    for metrics in sorted(Path(runs_dir).glob("*/*/metrics.json")):
        run = read_run(metrics.parent)
        if all(m in run.metrics for m in objective):
            out[run.name] = sum(w * run.metrics[m] for m, w in objective.items())
    return out


def compare(swarm_runs: str, final_runs: str, fit_json: str) -> int:
    from olmix.swarm.fitrecord import read_fit

    fit = read_fit(fit_json)
    objective = {metric: float(weight) for metric, weight in fit.objective.items()}
    swarm = _scores(swarm_runs, objective)
    final = _scores(final_runs, objective)
    proposal = next((v for k, v in final.items() if k.endswith("-proposal")), None)
    flat = next((v for k, v in final.items() if k.endswith("-uniform")), None)
    if proposal is None or flat is None or not swarm:
        print("missing runs: need the swarm, the proposal and the uniform mixture finished", file=sys.stderr)
        return 1
    best_run = min(swarm, key=swarm.__getitem__)
    terms = " + ".join(f"{w:g}×{m}" for m, w in objective.items())
    print(f"objective: {terms} (lower is better)")
    predicted = "none proposed" if fit.proposal is None else f"predicted {fit.proposal.predicted_objective:.4f}"
    print(f"  proposal       {proposal:.4f} ({predicted})")
    print(f"  uniform        {flat:.4f}")
    print(f"  swarm's best   {swarm[best_run]:.4f} ({best_run}, of {len(swarm)} runs)")
    print(f"proposal beats uniform: {'yes' if proposal < flat else 'no'} ({proposal - flat:+.4f})")
    print(
        f"proposal beats the swarm's best: {'yes' if proposal < swarm[best_run] else 'no'} "
        f"({proposal - swarm[best_run]:+.4f})"
    )
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "uniform":
        uniform(argv[1], argv[2])
        return 0
    if len(argv) == 4 and argv[0] == "compare":
        return compare(argv[1], argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
