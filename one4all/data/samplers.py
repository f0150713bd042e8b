"""Samplers that make training order reproducible and split data across DDP ranks exactly.

Training: the order of an epoch is a pure function of (seed, epoch), so a resumed run can skip
the samples already consumed and see exactly what an uninterrupted run would have seen.
Evaluation: contiguous shards without padding, so every sample is scored exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of `n` samples for one epoch: depends on (seed, epoch) only."""
    # SeedSequence mixes both numbers, so (seed, epoch) pairs never share a stream the way seed + epoch would.
    state = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.randperm(n, generator=torch.Generator().manual_seed(state))


class EpochShuffleSampler(Sampler[int]):
    """Training sampler: one permutation per epoch, dealt round-robin to `world_size` ranks.

    Rank r takes positions r, r + W, r + 2W, ... of the permutation, truncated so every rank gets
    the same count (DDP steps in lockstep): the ranks' samples are disjoint. After the first k
    batches of every rank, the consumed samples are exactly the first k * batch * W positions, so
    `resume(epoch, consumed)` is independent of the world size. Lightning calls `set_epoch`.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, consumed: int) -> None:
        """Skip the first `consumed` positions of `epoch`'s permutation, once (the next time it is iterated)."""
        self.epoch = epoch
        self._resume = (epoch, consumed)

    def __len__(self) -> int:
        return self.n // self.world_size

    def __iter__(self) -> Iterator[int]:
        # A generator: the permutation is drawn at the first `next`, after Lightning's `set_epoch`.
        start = 0
        if self._resume is not None:
            epoch, consumed = self._resume
            self._resume = None
            start = consumed if epoch == self.epoch else 0
        usable = len(self) * self.world_size
        order = epoch_permutation(self.n, self.seed, self.epoch)[start:usable]
        yield from order[self.rank::self.world_size].tolist()


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank r of W reads the contiguous shard [r*n/W, (r+1)*n/W), in order.

    No padding and no duplicates (unlike DistributedSampler), so summed errors all-reduced across
    ranks are exactly those of a single process; shards differ in length by at most one sample.
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.start = rank * n // world_size
        self.stop = (rank + 1) * n // world_size

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))
