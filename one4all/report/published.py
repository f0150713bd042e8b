"""Published results (published.csv, shipped with the package) and how ours compare with them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

COLUMNS = ["setting", "dataset", "model", "seq_len", "horizons", "mse", "mae", "source"]


@dataclass(frozen=True)
class Published:
    """One published cell: a model's MSE/MAE on a dataset, averaged over `horizons`, and where it is from."""

    setting: str
    dataset: str
    model: str
    seq_len: int | None
    horizons: tuple[int, ...]
    mse: float
    mae: float
    source: str


def _parse(text: str, origin: str) -> list[Published]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = next(reader, None)
    if header != COLUMNS:
        raise ValueError(f"{origin}: header {header} is not {COLUMNS}")
    cells = []
    for number, row in enumerate(reader, 2):
        if len(row) != len(COLUMNS):
            raise ValueError(f"{origin}: row {number} has {len(row)} fields, not {len(COLUMNS)}")
        setting, dataset, model, seq_len, horizons, mse, mae, source = row
        cells.append(Published(setting, dataset, model, int(seq_len) if seq_len else None,
                               tuple(int(h) for h in horizons.split("/")), float(mse), float(mae), source))
    return cells


def load_published(path: str | Path | None = None) -> list[Published]:
    """The published cells: the shipped table, or another file with the same columns."""
    if path is None:
        text, origin = resources.files("one4all.report").joinpath("published.csv").read_text(), "published.csv"
    else:
        text, origin = Path(path).read_text(), str(path)
    return _parse(text, origin)


def relative_gap(ours: float, published: float) -> float:
    """(ours - published) / published: +0.05 means ours is 5% higher (worse for MSE/MAE)."""
    return (ours - published) / published
