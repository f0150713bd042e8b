"""Helpers for tests that run `one4all train` in subprocesses, and test-only Lightning callbacks
plugged into those runs with `+callbacks.<name>={_target_:tests.probes....}`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L
import torch

REPO = Path(__file__).resolve().parent.parent


def subprocess_env() -> dict[str, str]:
    """Environment for a `python -m one4all.cli` child: `tests` importable, one thread, no DDP leftovers."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")}
    # One thread: the same float reductions in every process, so results compare exactly.
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return env


class IndexProbe(L.Callback):
    """Records the dataset indices each rank trains and tests on, to `<out>/rank<global rank>.json`.

    It tags every batch with the indices the loader fetched (wrapping the datasets' batched
    `__getitems__`), so what is recorded is what the model actually received.
    """

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.seen: dict[str, list[int]] = {"train": [], "test": []}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for split in ("train", "test"):
            dataset = trainer.datamodule.datasets[split]
            if "__getitems__" in vars(dataset):
                continue
            fetch = type(dataset).__getitems__

            def tagged(indices, dataset=dataset, fetch=fetch):
                return {**fetch(dataset, indices), "index": torch.as_tensor(indices)}

            dataset.__getitems__ = tagged

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen["train"] += batch["index"].tolist()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.seen["test"] += batch["index"].tolist()

    def on_test_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps({"world_size": trainer.world_size, **self.seen}))


class StallAt(L.Callback):
    """Blocks forever at a chosen point (after touching `marker`), so a test can SIGKILL the run there.

    `phase="train"`: before the training step taken at `global_step == step`;
    `phase="test"`: before the second test batch.
    """

    def __init__(self, marker: str, phase: str = "train", step: int = 0) -> None:
        self.marker, self.phase, self.step = Path(marker), phase, step

    def _stall(self) -> None:
        self.marker.write_text("stalled")
        while True:
            time.sleep(1)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.phase == "train" and trainer.global_step == self.step:
            self._stall()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.phase == "test" and batch_idx == 1:
            self._stall()
