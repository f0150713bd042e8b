"""Forecasting competitions as data specs: every series of one M4 frequency or one M3 group."""

from __future__ import annotations

from one4all.data.formats.m3 import M3_GROUPS, read_m3_sheet
from one4all.data.formats.m4 import M4_FREQUENCIES, read_m4_file
from one4all.data.sources.base import LoaderSettings
from one4all.data.sources.collections import SeriesCollection
from one4all.errors import UserError
from one4all.paths import resolve_data_file


class M4Data(LoaderSettings):
    """One frequency of the M4 competition (all its series; test = the competition's test values)."""

    def __init__(self, frequency: str = "Hourly", root: str | None = None, path: str = "M4",
                 batch_size: int = 16, eval_batch_size: int | None = None, num_workers: int = 0,
                 train_fraction: float = 1.0, name: str | None = None) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        if frequency not in M4_FREQUENCIES:
            raise UserError(f"unknown M4 frequency {frequency!r}; use one of {', '.join(M4_FREQUENCIES)}")
        self.frequency = frequency
        self.folder = resolve_data_file(root, path)
        self.name = name or f"M4-{frequency}"

    def load(self) -> SeriesCollection:
        """Read train and test files and pair them by series id."""
        horizon, m, history = M4_FREQUENCIES[self.frequency]
        train_path = self.folder / "Train" / f"{self.frequency}-train.csv"
        test_path = self.folder / "Test" / f"{self.frequency}-test.csv"
        ids, train = read_m4_file(train_path)
        test_ids, test = read_m4_file(test_path)
        if test_ids != ids:
            raise UserError(f"{test_path} and {train_path} list different series; use matching competition files")
        return SeriesCollection(self.name, ids, train, test, horizon, m, history,
                                meta={"source": "M4", "frequency": self.frequency, "path": str(self.folder)})


class M3Data(LoaderSettings):
    """One frequency group of the M3 competition; test = each series' last NF values."""

    def __init__(self, group: str = "Other", root: str | None = None, path: str = "M3/M3C.xls",
                 batch_size: int = 16, eval_batch_size: int | None = None, num_workers: int = 0,
                 train_fraction: float = 1.0, name: str | None = None) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        if group not in M3_GROUPS:
            raise UserError(f"unknown M3 group {group!r}; use one of {', '.join(M3_GROUPS)}")
        self.group = group
        self.path = resolve_data_file(root, path)
        self.name = name or f"M3-{group}"

    def load(self) -> SeriesCollection:
        """Read the group's sheet and split every series into in-sample and test parts."""
        sheet, horizon, m, history = M3_GROUPS[self.group]
        ids, series, nf = read_m3_sheet(self.path, sheet)
        if any(f != horizon for f in nf):
            raise UserError(f"{self.path}:{sheet} has NF other than {horizon}; use the original M3C.xls")
        return SeriesCollection(self.name, ids, [s[:-horizon] for s in series], [s[-horizon:] for s in series],
                                horizon, m, history, meta={"source": "M3", "group": self.group, "path": str(self.path)})
