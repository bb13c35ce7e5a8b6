"""The results plot: held-out loss against quality threshold (matplotlib, the `plot` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from olmix.errors import ExtraMissing, OlmixError
from olmix.fileio import OutputError, make_dir


def draw(series: Mapping[str, list[tuple[float, float, float | None]]], path: Path, *, title: str) -> None:
    """Held-out loss (y) against the share of data kept (x), one line per source; written atomically.

    A point is (threshold, loss, standard error or None): with replicates, the loss is their mean and the
    error bar spans one standard error either side."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExtraMissing("--plot needs matplotlib", "plot") from None
    import os
    import tempfile

    if not series:
        raise OlmixError("nothing to plot: no run has both a threshold and a held-out loss")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for source, points in sorted(series.items()):
        xs = [100 * x for x, _, _ in points]
        ys = [y for _, y, _ in points]
        errors = [0.0 if se is None else se for _, _, se in points]
        if any(errors):
            ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=source)
        else:
            ax.plot(xs, ys, marker="o", label=source)
    ax.set_xlabel("quality threshold: % of data kept (top buckets)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(title="source")
    fig.tight_layout()
    make_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
        os.close(fd)
    except OSError as exc:
        plt.close(fig)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
