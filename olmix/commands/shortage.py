"""One answer when leaves are short of tokens: the planner's summary (olmix.planning.budget.ShortageSummary) as text or
JSON.

A config written for the real corpus and planned against a small copy has every leaf short; forty lines that each
say so tell a researcher less than one paragraph saying by how much and which `--set` makes it fit. Each short leaf
is still there: with `--verbose`, or in the JSON.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from olmix.errors import Problem
from olmix.planning.budget import ShortageSummary


def number(value: float) -> str:
    """A float as a config takes it, never in exponent form (0.00005, not 5e-05)."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _span(values: list[int], unit: str) -> str:
    low, high = min(values), max(values)
    return f"{low:,} {unit}" if low == high else f"{low:,} to {high:,} {unit} per run"


def fixes(summary: ShortageSummary) -> list[list[str]]:
    """The `--set` overrides that make every run fit, the least change first."""
    out = []
    if summary.fits is not None:
        out.append([f"chinchilla_multiple={number(summary.fits)}"])
    models = {s.model for s in summary.shortages}
    if summary.fits_smallest is not None and models != {summary.smallest}:
        out.append([f"proxy_model_id={summary.smallest}", f"chinchilla_multiple={number(summary.fits_smallest)}"])
    return out


def lines(summary: ShortageSummary, others: list[Problem], leaves: list[Problem], verbose: bool) -> list[str]:
    shortages = summary.shortages
    short = sum(len(s.short) for s in shortages)
    if summary.runs == 1:
        one = shortages[0]
        head = f"not enough data for run {one.run} ({one.config}): {short} of its {one.leaves} leaves are short"
    else:
        every = sum(s.leaves for s in shortages)
        head = (
            f"not enough data: {len(shortages)} of {summary.runs} runs have short leaves "
            f"({short} of their {every} leaves)"
        )
    settings = ", ".join(
        dict.fromkeys(f"{s.model} × chinchilla_multiple {number(s.chinchilla_multiple)}" for s in shortages)
    )
    out = [str(p) for p in others] + ([str(p) for p in leaves] if verbose else [])
    out += [
        head,
        f"  budget:     {_span([s.requested for s in shortages], 'tokens')} (20 × parameters of {settings})",
        f"  available:  {_span([s.available for s in shortages], 'tokens')} in the leaves trained on",
    ]
    caps = sorted({c for s in shortages for c in s.caps})
    if summary.repetition is None:
        out.append("  repetition: a leaf with a share holds no tokens, so no budget fits; give it data or weight 0")
    else:
        cap = ("cap " if len(caps) == 1 else "caps ") + ", ".join(number(c) for c in caps)
        out.append(f"  repetition: a short leaf would need up to {number(summary.repetition)}× ({cap})")
    if summary.fits is not None:
        models = " / ".join(dict.fromkeys(s.model for s in shortages))
        fit = f"  fits:       chinchilla_multiple ≤ {number(summary.fits)} with {models}"
        if summary.fits_smallest is not None and summary.smallest not in models.split(" / "):
            fit += f"; ≤ {number(summary.fits_smallest)} with the smallest proxy, {summary.smallest}"
        out.append(fit)
    for i, fix in enumerate(fixes(summary)):
        out.append(("  to fit:     " if i == 0 else "          or: ") + " ".join(f"--set {f}" for f in fix))
    if not verbose:
        out.append("  each short leaf: --verbose (or --format json)")
    return out


def document(summary: ShortageSummary, others: list[Problem]) -> dict[str, Any]:
    """The summary, every short leaf and the other problems, for scripts."""
    return {
        "error": "short",
        "runs": summary.runs,
        "repetition": summary.repetition,
        "fits": {
            "chinchilla_multiple": summary.fits,
            "smallest_proxy": summary.smallest,
            "smallest_proxy_chinchilla_multiple": summary.fits_smallest,
        },
        "set": fixes(summary),
        "shortages": [
            {
                "run": s.run,
                "config": s.config,
                "model": s.model,
                "chinchilla_multiple": s.chinchilla_multiple,
                "requested_tokens": s.requested,
                "tokens_available": s.available,
                "leaves": s.leaves,
                "largest_budget": s.largest_budget,
                "short": [
                    {
                        "leaf": f.leaf,
                        "tokens_available": f.have,
                        "tokens_needed": f.need,
                        "max_repetition_factor": f.cap,
                        "repetition_needed": f.suffices,
                    }
                    for f in s.short
                ],
            }
            for s in summary.shortages
        ],
        "problems": [p.as_dict() for p in others],
    }
