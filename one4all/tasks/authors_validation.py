"""`paper_compat`'s validation mode: networks validated in the train/eval mode their authors used."""

from __future__ import annotations

import lightning as L


class AuthorsValidationMode(L.Callback):
    """With `enabled` (the config's `paper_compat`), each validation runs the task's network in the
    mode its authors validated it in (`Network.authors_validation_mode`): GPT4TS / One-for-All's
    long-term code keeps GPT-2's dropout on, so the loss that drives early stopping and checkpoint
    choice is noisy. Lightning calls `eval()` before validation and `train()` after it; this callback
    acts in between, and does nothing when not enabled (honest evaluation: everything in eval mode).
    """

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and not trainer.sanity_checking:
            pl_module.network.authors_validation_mode()
