"""UEA/sktime classification problems as data specs: TRAIN/TEST `.ts` files (parser in formats.uea)."""

from __future__ import annotations

from one4all.data.formats.uea import TsData, read_ts
from one4all.data.sources.base import LoaderSettings
from one4all.errors import UserError
from one4all.paths import resolve_data_file


class UeaData(LoaderSettings):
    """A UEA/sktime problem: `<root>/<name>/<name>_TRAIN.ts` and `..._TEST.ts` (or explicit files)."""

    def __init__(self, name: str, root: str | None = None, train_file: str | None = None,
                 test_file: str | None = None, batch_size: int = 64, eval_batch_size: int | None = None,
                 num_workers: int = 0, train_fraction: float = 1.0) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        self.name = name
        self.train_path = resolve_data_file(root, train_file or f"{name}/{name}_TRAIN.ts")
        self.test_path = resolve_data_file(root, test_file or f"{name}/{name}_TEST.ts")

    def load(self) -> tuple[TsData, TsData]:
        """(TRAIN, TEST), checked to share dimensions and classes."""
        train, test = read_ts(self.train_path), read_ts(self.test_path)
        if not train.class_names:
            raise UserError(f"{self.train_path} has no class labels (@classLabel false); classification needs them")
        if train.n_dims != test.n_dims:
            raise UserError(f"TRAIN has {train.n_dims} dimensions, TEST {test.n_dims}; use files of one problem")
        unknown = sorted(set(test.labels) - set(train.class_names))
        if unknown:
            raise UserError(f"TEST labels {unknown[:5]} are not classes of TRAIN {train.class_names}")
        return train, test
