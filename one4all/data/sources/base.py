"""What every data spec shares: how its batches are fed."""

from __future__ import annotations

from dataclasses import dataclass

from one4all.errors import UserError


@dataclass
class LoaderSettings:
    """How batches are fed: shared by every data spec."""

    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int = 0
    train_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction <= 1.0:
            raise UserError(f"data.train_fraction={self.train_fraction} must be in (0, 1]")
