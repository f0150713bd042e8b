"""One LightningDataModule for every task: it feeds the datasets a task's windowing built."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from one4all.data.samplers import EpochShuffleSampler, ShardSampler
from one4all.data.windows.base import WindowDataset, collate_prebatched


class TimeSeriesDataModule(L.LightningDataModule):
    """Serves train/val/test datasets, on one process or split across DDP ranks.

    Training order is a pure function of (`seed`, epoch) and is dealt to ranks disjointly; a run
    resumed mid-epoch skips what was consumed (`resume_at`). Val and test never drop the last
    partial batch and are never shuffled; under DDP each rank scores its own contiguous shard,
    with no padding duplicates. `paper_compat=True` reproduces GPT4TS/One-for-All's test loader
    (`drop_last=True`), which silently skips up to batch_size - 1 test samples, and their
    validation loader (shuffled, `drop_last=True`: the skipped samples change every epoch); it
    exists only to compare with their published numbers.
    """

    def __init__(
        self,
        datasets: dict[str, WindowDataset],
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
        self._resume: dict[str, int] | None = None
        self._train_sampler: EpochShuffleSampler | None = None

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, split: str, sampler: Sampler, drop_last: bool, batch_size: int) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_prebatched,
            # Its own generator: creating an iterator would otherwise draw from torch's global RNG,
            # which dropout uses, and a resumed run creates iterators at different moments.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_position(self, batches: int, epoch_finished: bool) -> dict[str, int]:
        """Where training is in the data after `batches` batches per rank of the current epoch."""
        sampler = self._train_sampler
        if sampler is None:
            return {"epoch": 0, "samples": 0}
        if epoch_finished:
            return {"epoch": sampler.epoch + 1, "samples": 0}
        # Samples consumed by all ranks together: independent of the world size (EpochShuffleSampler).
        return {"epoch": sampler.epoch, "samples": batches * self.batch_size * sampler.world_size}

    def resume_at(self, position: dict[str, int]) -> None:
        """Make the next training loader start where `train_position` was taken."""
        self._resume = position

    def train_dataloader(self) -> DataLoader:
        rank, world = self._ranks()
        sampler = EpochShuffleSampler(len(self.datasets["train"]), self.seed, rank, world)
        if self._resume is not None:
            sampler.resume(self._resume["epoch"], self._resume["samples"])
            self._resume = None
        self._train_sampler = sampler
        # drop_last on train only (as the papers): keeps batch statistics stable, skips no eval data.
        drop = len(sampler) > self.batch_size
        return self._loader("train", sampler, drop_last=drop, batch_size=self.batch_size)

    def _eval_loader(self, split: str, drop_last: bool = False) -> DataLoader:
        sampler = ShardSampler(len(self.datasets[split]), *self._ranks())
        return self._loader(split, sampler, drop_last=drop_last, batch_size=self.eval_batch_size)

    def val_dataloader(self) -> DataLoader | list:
        if "val" not in self.datasets:
            # No validation split (data.split=all): Lightning runs no validation on an empty list.
            return []
        if not self._paper_drop_last("val"):
            return self._eval_loader("val")
        # The authors' validation order: a fresh shuffle each epoch (a pure function of seed and
        # epoch here, set by Lightning), the last partial batch dropped unless it is the only one.
        sampler = EpochShuffleSampler(len(self.datasets["val"]), self.seed, *self._ranks())
        drop = len(sampler) > self.eval_batch_size
        return self._loader("val", sampler, drop_last=drop, batch_size=self.eval_batch_size)

    def _paper_drop_last(self, split: str = "test") -> bool:
        # The papers drop the last val/test batch in windowed forecasting and imputation, not in anomaly
        # detection, classification or M4 (all series in one pass): the dataset says which.
        return self.paper_compat and split in self.datasets and self.datasets[split].paper_drop_last

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test", drop_last=self._paper_drop_last())

    def predict_dataloader(self) -> DataLoader:
        # Unsharded: Lightning shards prediction loaders itself (and tracks the indices).
        sampler = ShardSampler(len(self.datasets["test"]))
        return self._loader("test", sampler, drop_last=False, batch_size=self.eval_batch_size)

    def sizes(self) -> dict[str, int]:
        """Number of samples per split, as the loaders will serve them (on one process)."""
        out = {f"n_{split}_samples": len(ds) for split, ds in self.datasets.items()}
        if self._paper_drop_last():
            n = out["n_test_samples"]
            out["n_test_samples"] = n - n % self.eval_batch_size
        return out
