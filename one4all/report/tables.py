"""Runs -> the papers' table shape: rows dataset, columns horizon + average, cells mean ± std over seeds.

One table per (setting, model, input length, horizon set): long-term forecasting runs with all their
training windows form `long_term` tables, few-shot runs `few_shot_<percent>` ones; ILI's horizons
(24..60) get their own table. The average column is, per seed, the mean over the table's horizons,
then mean ± std over the seeds that ran every horizon (as the papers' "Avg"). std is the sample
standard deviation (n - 1); a single run shows its value alone. Runs of other tasks are listed in
one more table, their test metrics as mean ± std per experiment.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from one4all.compare.report import human_bytes
from one4all.report.published import Published, relative_gap
from one4all.report.runs import Run

FORECAST_TASK = "long_term_forecast"
METRICS = ("mse", "mae")
# The papers' row order; other datasets follow alphabetically.
_DATASET_ORDER = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "electricity", "traffic", "exchange_rate", "illness")
_SETTING_NAMES = {"long_term": "long-term"}


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def cell_text(values: list[float], digits: int = 3) -> str:
    """`0.412 ± 0.003` over several runs, `0.412` for one, `–` for none."""
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _by_seed(runs: Iterable[Run], metric: str) -> dict[int | None, float]:
    """One value per seed (repeated runs of a seed are averaged first)."""
    grouped: dict[int | None, list[float]] = defaultdict(list)
    for run in runs:
        grouped[run.seed].append(run.metrics[f"test/{metric}"])
    return {seed: statistics.fmean(values) for seed, values in grouped.items()}


def _span(values: list[int], show: Callable[[int], str] = "{:,}".format) -> str:
    """`546,304` or `546,304–556,288` (trainable parameters grow with the horizon's head)."""
    if not values:
        return "–"
    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)}–{show(high)}"


@dataclass
class Row:
    """One dataset of a table: its runs per horizon."""

    dataset: str
    runs: dict[int, list[Run]] = field(default_factory=dict)

    def values(self, horizon: int, metric: str) -> list[float]:
        """Per-seed values of one cell."""
        return list(_by_seed(self.runs.get(horizon, []), metric).values())

    def average(self, horizons: tuple[int, ...], metric: str) -> tuple[list[float], bool]:
        """Per-seed averages over the horizons (seeds that ran them all), or the mean of the cell means
        (second item False) when no seed ran every horizon."""
        per_horizon = {h: _by_seed(self.runs.get(h, []), metric) for h in horizons}
        complete = set.intersection(*(set(v) for v in per_horizon.values())) if per_horizon else set()
        if complete:
            return [statistics.fmean(per_horizon[h][s] for h in horizons) for s in sorted(complete, key=str)], True
        means = [statistics.fmean(v.values()) for v in per_horizon.values() if v]
        return ([statistics.fmean(means)] if means else []), False

    @property
    def all_runs(self) -> list[Run]:
        return [run for runs in self.runs.values() for run in runs]

    @property
    def seeds(self) -> list[int | None]:
        return sorted({run.seed for run in self.all_runs}, key=str)


@dataclass
class Table:
    """Rows dataset, columns horizon: one model in one setting at one input length."""

    setting: str
    model: str
    seq_len: int
    horizons: tuple[int, ...]
    rows: list[Row]

    @property
    def title(self) -> str:
        setting = _SETTING_NAMES.get(self.setting, self.setting.replace("few_shot_", "few-shot ") + "%")
        return f"{setting} · {self.model} · L={self.seq_len}"


def _dataset_key(name: str) -> tuple[int, str]:
    return (_DATASET_ORDER.index(name), "") if name in _DATASET_ORDER else (len(_DATASET_ORDER), name)


def is_forecast(run: Run) -> bool:
    """A long-term (or few-shot) forecasting run with MSE and MAE: it belongs in the papers' tables."""
    return (run.task == FORECAST_TASK and run.horizon is not None
            and all(f"test/{m}" in run.metrics for m in METRICS))


def forecast_tables(runs: list[Run]) -> list[Table]:
    """Group forecasting runs into the papers' tables."""
    rows: dict[tuple[str, str, int, str], Row] = {}
    for run in filter(is_forecast, runs):
        row = rows.setdefault((run.setting, run.model, run.seq_len, run.dataset), Row(run.dataset))
        row.runs.setdefault(run.horizon, []).append(run)
    tables: dict[tuple[str, str, int, tuple[int, ...]], Table] = {}
    for (setting, model, seq_len, _), row in rows.items():
        horizons = tuple(sorted(row.runs))
        key = (setting, model, seq_len, horizons)
        tables.setdefault(key, Table(setting, model, seq_len, horizons, [])).rows.append(row)
    for table in tables.values():
        table.rows.sort(key=lambda r: _dataset_key(r.dataset))
    return [tables[k] for k in sorted(tables, key=lambda k: (k[0] != "long_term", k[0], k[1], k[2], k[3]))]


def table_markdown(table: Table) -> str:
    """One table: a row per dataset and metric, a column per horizon, the average, seeds and cost."""
    head = ["dataset", "metric", *map(str, table.horizons), "avg", "seeds", "trainable params", "artifact"]
    lines = [f"### {table.title}", "", "| " + " | ".join(head) + " |",
             "|---|---|" + "---:|" * (len(table.horizons) + 1) + "---|---:|---:|"]
    for row in table.rows:
        runs = row.all_runs
        params = _span([r.trainable_params for r in runs if r.trainable_params is not None])
        size = _span([r.artifact_bytes for r in runs if r.artifact_bytes is not None], human_bytes)
        seeds = ", ".join(str(s) for s in row.seeds)
        for i, metric in enumerate(METRICS):
            average, _ = row.average(table.horizons, metric)
            cells = [cell_text(row.values(h, metric)) for h in table.horizons] + [cell_text(average)]
            first = [row.dataset] if i == 0 else [""]
            extra = [seeds, params, size] if i == 0 else ["", "", ""]
            lines.append("| " + " | ".join([*first, metric.upper(), *cells, *extra]) + " |")
    return "\n".join(lines) + "\n"


def published_markdown(table: Table, published: list[Published]) -> str:
    """Published averages beside ours for the table's datasets, with the relative gap where it is meaningful:
    the same model, averaged over the same horizons."""
    lines = ["Published beside ours (averages over horizons; gap = (ours - published) / published, shown for "
             "the same model over the same horizons):", "",
             "| dataset | published | source | L | horizons | MSE | MAE | ours MSE | ours MAE | gap MSE | gap MAE |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    notes: set[str] = set()
    sources: set[str] = set()
    shown = 0
    for row in table.rows:
        ours = {m: row.average(table.horizons, m)[0] for m in METRICS}
        ours_mean = {m: statistics.fmean(v) if v else None for m, v in ours.items()}
        for cell in (p for p in published if p.setting == table.setting and p.dataset == row.dataset):
            comparable = cell.model == table.model and cell.horizons == table.horizons
            gaps = []
            for metric, theirs in zip(METRICS, (cell.mse, cell.mae), strict=True):
                value = ours_mean[metric]
                gaps.append(f"{relative_gap(value, theirs):+.1%}" if comparable and value else "–")
            if cell.model == table.model and cell.horizons != table.horizons:
                notes.add(f"ours average {'/'.join(map(str, table.horizons))}, the papers "
                          f"{'/'.join(map(str, cell.horizons))}: not the same protocol, no gap")
            if comparable and cell.seq_len is not None and cell.seq_len != table.seq_len:
                notes.add(f"{cell.source}: L={cell.seq_len}, ours L={table.seq_len}")
            ours_text = [f"{ours_mean[m]:.3f}" if ours_mean[m] is not None else "–" for m in METRICS]
            sources.add(cell.source)
            lines.append(f"| {row.dataset} | {cell.model} | {_short(cell.source)} | {cell.seq_len or '–'} | "
                         f"{'/'.join(map(str, cell.horizons))} | {cell.mse:g} | {cell.mae:g} | "
                         f"{' | '.join(ours_text)} | {' | '.join(gaps)} |")
            shown += 1
    if not shown:
        return f"No published numbers for {table.setting} on {', '.join(r.dataset for r in table.rows)}.\n"
    notes.add("sources: " + "; ".join(sorted(sources)))
    return "\n".join(lines + [""] + [f"- {n}" for n in sorted(notes)]) + "\n"


def _short(source: str) -> str:
    """`One-for-All (Dey et al., arXiv 2603.29756) Table I` -> `One-for-All Table I` (full one in the notes)."""
    return re.sub(r" \([^)]*\)", "", source)


def _other_groups(runs: list[Run]) -> list[tuple[tuple, list[Run]]]:
    """Runs that differ only by seed, together: (task, dataset, model, L, H, task settings, train fraction)."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        key = (run.task, run.dataset, run.model, run.seq_len, run.horizon, run.variant, run.train_fraction)
        groups[key].append(run)
    return sorted(groups.items(), key=lambda item: str(item[0]))


def other_markdown(runs: list[Run]) -> str:
    """Runs outside the forecasting tables: their test metrics, mean ± std over seeds, per experiment."""
    lines = ["### other runs", "", "| task | dataset | model | L | H | task settings | train | seeds | test metrics |",
             "|---|---|---|---:|---:|---|---:|---|---|"]
    for (task, dataset, model, seq_len, horizon, variant, fraction), group in _other_groups(runs):
        names = sorted({k for run in group for k in run.metrics})
        shown = ", ".join(f"{k.removeprefix('test/')} {cell_text([r.metrics[k] for r in group if k in r.metrics], 4)}"
                          for k in names)
        seeds = ", ".join(str(s) for s in sorted({r.seed for r in group}, key=str))
        lines.append(f"| {task} | {dataset} | {model} | {seq_len} | {horizon if horizon is not None else '–'} | "
                     f"{variant or '–'} | {fraction:.0%} | {seeds} | {shown or '–'} |")
    return "\n".join(lines) + "\n"


def markdown(runs: list[Run], published: list[Published] | None = None, title: str = "") -> str:
    """The whole report: every forecasting table (with the published numbers if given), then other runs."""
    parts = [f"# Report{': ' + title if title else ''}", ""]
    for table in forecast_tables(runs):
        parts.append(table_markdown(table))
        if published is not None:
            parts.append(published_markdown(table, published))
    others = [r for r in runs if not is_forecast(r)]
    if others:
        parts.append(other_markdown(others))
    return "\n".join(parts)


CSV_COLUMNS = ("setting", "task", "model", "dataset", "seq_len", "horizon", "variant", "metric", "mean", "std",
               "n_seeds", "seeds", "trainable_params", "artifact_bytes")


def csv_text(runs: list[Run]) -> str:
    """The report as CSV, one row per cell: forecasting cells (horizon or `avg`) and other runs' metrics."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for table in forecast_tables(runs):
        for row in table.rows:
            for metric in METRICS:
                for horizon in (*table.horizons, "avg"):
                    if horizon == "avg":
                        values, _ = row.average(table.horizons, metric)
                        cell_runs = row.all_runs
                    else:
                        values, cell_runs = row.values(horizon, metric), row.runs.get(horizon, [])
                    if not values:
                        continue
                    mean, std = mean_std(values)
                    params = sorted({r.trainable_params for r in cell_runs if r.trainable_params is not None})
                    sizes = sorted({r.artifact_bytes for r in cell_runs if r.artifact_bytes is not None})
                    writer.writerow({"setting": table.setting, "task": FORECAST_TASK, "model": table.model,
                                     "dataset": row.dataset, "seq_len": table.seq_len, "horizon": horizon,
                                     "variant": "",
                                     "metric": metric, "mean": mean, "std": "" if std is None else std,
                                     "n_seeds": len(values), "seeds": " ".join(str(s) for s in row.seeds),
                                     "trainable_params": params[0] if len(params) == 1 else "",
                                     "artifact_bytes": sizes[0] if len(sizes) == 1 else ""})
    for (task, dataset, model, seq_len, horizon, variant, _), group in _other_groups(
            [r for r in runs if not is_forecast(r)]):
        for name in sorted({k for run in group for k in run.metrics}):
            values = [r.metrics[name] for r in group if name in r.metrics]
            mean, std = mean_std(values)
            writer.writerow({"setting": group[0].setting, "task": task, "model": model, "dataset": dataset,
                             "seq_len": seq_len, "horizon": "" if horizon is None else horizon, "variant": variant,
                             "metric": name.removeprefix("test/"), "mean": mean, "std": "" if std is None else std,
                             "n_seeds": len(values), "seeds": " ".join(str(r.seed) for r in group),
                             "trainable_params": "", "artifact_bytes": ""})
    return buffer.getvalue()
