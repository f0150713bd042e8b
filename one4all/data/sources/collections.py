"""A collection of independent univariate series with a fixed forecast horizon (M3, M4)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from one4all.errors import UserError


@dataclass
class SeriesCollection:
    """Series of different lengths, each split into its in-sample part and `horizon` test values.

    `seasonality` is the period m of MASE and Naive2; `sampling_history` is how far back (in
    horizons) training cut points may lie (Time-Series-Library's `history_size`).
    """

    name: str
    ids: list[str]
    train: list[np.ndarray]
    test: list[np.ndarray]
    horizon: int
    seasonality: int
    sampling_history: float
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.train:
            raise UserError(f"{self.name}: no series found; check the data files")
        bad = [i for i, t in zip(self.ids, self.test) if len(t) != self.horizon]
        if bad:
            raise UserError(f"{self.name}: series {bad[:3]} do not have {self.horizon} test values; "
                            "check the test file matches the frequency")

    @property
    def n_series(self) -> int:
        return len(self.train)

    def describe(self) -> dict:
        """Summary for metrics.json."""
        lengths = [len(t) for t in self.train]
        return {"name": self.name, "n_series": self.n_series, "horizon": self.horizon,
                "seasonality": self.seasonality, "min_train_length": min(lengths),
                "max_train_length": max(lengths), **self.meta}
