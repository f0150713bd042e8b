"""The report's chart: MSE against horizon per dataset, mean ± std over seeds, one panel per table."""

from __future__ import annotations

from pathlib import Path

from one4all.report.tables import Table, mean_std


def write_chart(tables: list[Table], path: Path) -> Path | None:
    """One panel per table (a line per dataset, error bars = std over seeds); None when there is no table."""
    if not tables:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 4), squeeze=False, constrained_layout=True)
    for ax, table in zip(axes[0], tables):
        for row in table.rows:
            points = [(h, *mean_std(v)) for h in table.horizons if (v := row.values(h, "mse"))]
            if not points:
                continue
            xs, means, stds = zip(*points)
            ax.errorbar(xs, means, yerr=[s or 0.0 for s in stds], marker="o", capsize=3, label=row.dataset)
        ax.set_xticks(list(table.horizons))
        ax.set_xlabel("horizon")
        ax.set_ylabel("test MSE (scaled data)")
        ax.set_title(table.title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
