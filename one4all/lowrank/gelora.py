"""GeLoRA: per-block LoRA ranks from the intrinsic dimension of GPT-2's hidden states.

METHODS.md §1. Before training, TwoNN estimates the ID d_0 of the states entering block 1 and
d_i of the states leaving block i (before GPT-2's final LayerNorm), on windows drawn from the
train split only. Block i gets rank r_i = max(round(d_i - d_{i-1}), 0) + 1 on every targeted
projection and alpha_i chosen so the scale is `alpha_ratio` in every block (GeLoRA: alpha = 32 r
under plain LoRA scaling; under rsLoRA alpha = 32 sqrt(r) keeps the same constant scale). The
preset's other targets (wpe, head) keep the fixed `rank`/`alpha`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from peft import LoraConfig
from torch import nn
from torch.utils.data import Dataset, default_collate

from one4all.adapters.lora import LoRASpec
from one4all.errors import UserError
from one4all.lowrank.twonn import gelora_ranks, twonn

POINTS = ("token", "window")
# The block of a module name: GPT-2 `gpt2.h.3.`, BERT `bert.encoder.layer.3.`, stand-ins `stand_in.layer.0.`.
_BLOCK = re.compile(r"(?:^|\.)(?:h|layer)\.(\d+)\.")


@dataclass
class GeLoRASpec(LoRASpec):
    """A `LoRASpec` whose block projections get ranks from the ID profile of the train split.

    block_ranks: one rank per GPT-2 block; null = estimate them (`calibrate`). Calibration draws
    `windows` train windows (seed `calibration_seed`); a point is one patch token (`token`) or a
    window's mean token (`window`); at most `max_points` points enter TwoNN, optionally z-scored
    per feature (`standardize`, against GPT-2's outlier dimensions).
    """

    block_targets: list[str] = field(default_factory=lambda: ["c_attn", "attn_proj", "mlp_fc", "mlp_proj"])
    block_ranks: list[int] | None = None
    alpha_ratio: float = 32.0
    windows: int = 256
    max_points: int = 4000
    points: str = "token"
    standardize: bool = False
    discard_fraction: float = 0.1
    calibration_seed: int = 0

    def resolved(self) -> tuple[list[str], list[str]]:
        lora, full = super().resolved()
        return lora + [part for part in self.block_targets if part not in lora], full

    def needs_train_data(self) -> bool:
        return self.block_ranks is None

    def block_alpha(self, rank: int) -> float:
        """alpha for a block of rank `rank`: the scale (alpha/r or alpha/sqrt r) is `alpha_ratio`."""
        return self.alpha_ratio * (math.sqrt(rank) if self.scaling == "rslora" else rank)

    def lora_config(self, modules: list[str]) -> LoraConfig:
        config = super().lora_config(modules)
        if self.block_ranks is None:
            raise UserError("GeLoRA ranks are not estimated yet; build the network through `one4all train` "
                            "or set adapter.block_ranks")
        ranks, alphas = {}, {}
        for name in modules:
            match = _BLOCK.search(name)
            if match is None:
                continue
            block = int(match.group(1))
            if block >= len(self.block_ranks):
                raise UserError(f"adapter.block_ranks has {len(self.block_ranks)} entries but {name} is in block "
                                f"{block}; give one rank per GPT-2 block")
            rank = int(self.block_ranks[block])
            ranks[re.escape(name)] = rank
            alphas[re.escape(name)] = self.block_alpha(rank)
        return dataclasses.replace(config, rank_pattern=ranks, alpha_pattern=alphas)

    def calibrate(self, network: nn.Module, train: Dataset) -> dict[str, Any]:
        started = time.perf_counter()
        states = sampled_states(network, train, self.windows, self.calibration_seed)
        profile = [twonn(self.point_cloud(h), self.discard_fraction) for h in states]
        self.block_ranks = gelora_ranks(profile)
        return {"method": "gelora", "id_profile": [round(d, 3) for d in profile], "block_ranks": self.block_ranks,
                "block_alphas": [self.block_alpha(r) for r in self.block_ranks],
                "id_estimation_s": round(time.perf_counter() - started, 2),
                "calibration": {"windows": min(self.windows, len(train)), "points": self.points,
                                "max_points": self.max_points, "standardize": self.standardize,
                                "split": "train", "states": "block input, block outputs before ln_f"}}

    def point_cloud(self, hidden: torch.Tensor) -> torch.Tensor:
        """`hidden[sequences, tokens, features]` -> the TwoNN points, subsampled and optionally z-scored."""
        if self.points not in POINTS:
            raise UserError(f"adapter.points={self.points!r}; use token or window")
        points = hidden.flatten(0, 1) if self.points == "token" else hidden.mean(dim=1)
        if len(points) > self.max_points:
            generator = torch.Generator().manual_seed(self.calibration_seed)
            points = points[torch.randperm(len(points), generator=generator)[: self.max_points]]
        if self.standardize:
            points = (points - points.mean(0)) / points.std(0).clamp_min(1e-12)
        return points

    def replay(self) -> dict[str, Any]:
        return {"block_ranks": self.block_ranks}


def sampled_states(network: nn.Module, train: Dataset, windows: int, seed: int) -> list[torch.Tensor]:
    """The network's block states (`block_states`) for `windows` train windows drawn with `seed`."""
    if windows < 1 or len(train) == 0:
        raise UserError(f"GeLoRA calibration needs training windows (adapter.windows={windows}, "
                        f"train split has {len(train)})")
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(train), generator=generator)[:windows].tolist()
    batch = default_collate([train[i] for i in indices])
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            return network.block_states(batch["x"], batch.get("mask"), batch.get("x_mark"))
    finally:
        network.train(was_training)
