"""One LightningDataModule for every task: it feeds the datasets a task's windowing built."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Dataset

from one4all.data.windows import collate_prebatched


class TimeSeriesDataModule(L.LightningDataModule):
    """Serves train/val/test datasets.

    Val and test never drop the last partial batch, and are never shuffled. `paper_compat=True`
    reproduces GPT4TS/One-for-All's test loader (`drop_last=True`), which silently skips up to
    batch_size - 1 test samples; it exists only to compare with their published numbers.
    """

    def __init__(
        self,
        datasets: dict[str, Dataset],
        batch_size: int,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        paper_compat: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.datasets = datasets
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.paper_compat = paper_compat
        self.seed = seed

    def _loader(self, split: str, shuffle: bool, drop_last: bool, batch_size: int) -> DataLoader:
        dataset = self.datasets[split]
        prebatched = hasattr(dataset, "__getitems__")
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_prebatched if prebatched else None,
        )

    def train_dataloader(self) -> DataLoader:
        # drop_last on train only (as the papers): keeps batch statistics stable, skips no eval data.
        drop = len(self.datasets["train"]) > self.batch_size
        return self._loader("train", shuffle=True, drop_last=drop, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False, batch_size=self.eval_batch_size)

    def _paper_drop_last(self) -> bool:
        # The papers' test-time drop_last comes from their windowed loaders; a test set whose paper
        # protocol scores every sample (M4: all series in one pass) opts out with `paper_drop_last = False`.
        return self.paper_compat and getattr(self.datasets["test"], "paper_drop_last", True)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=self._paper_drop_last(), batch_size=self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False, batch_size=self.eval_batch_size)

    def sizes(self) -> dict[str, int]:
        """Number of samples per split, as the loaders will serve them."""
        out = {f"n_{split}_samples": len(ds) for split, ds in self.datasets.items()}
        if self._paper_drop_last():
            n = out["n_test_samples"]
            out["n_test_samples"] = n - n % self.eval_batch_size
        return out
