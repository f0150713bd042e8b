"""PreLoRA (METHODS.md §2): the method's spec and its rules.

`PreLoRASpec` trains the preset's parts in full (GPT4TS's), and holds the switch to LoRA that the
Lightning callback (`adapters/prelora_callback.py`) triggers at partial convergence. The rules, when
training has partially converged and which LoRA rank each module gets, are pure functions over
per-window records (METHODS.md §2.3-2.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from one4all.adapters.lora import LoRASpec, peft_init
from one4all.adapters.switch import switch_to_lora


@dataclass
class PreLoRASpec(LoRASpec):
    """The preset's parts train in full until the callback switches some of them to LoRA.

    `switched` (module name -> rank) is set by the switch and saved with the model, so that a
    reload rebuilds the switched network; the switched modules' trained base weights are frozen
    but learned, so artifacts and checkpoints store them (`stored_frozen`).
    """

    preset: str = "gpt4ts"
    init: str = "kaiming"
    switched: dict[str, int] | None = None
    frozen_learned: list[str] = field(default_factory=list, init=False, repr=False)

    def apply(self, network: nn.Module) -> None:
        super().apply(network)
        if self.switched:
            self.frozen_learned = []
            self.switch(network, dict(self.switched))

    def switch(self, network: nn.Module, ranks: dict[str, int]) -> None:
        """Wrap the modules in `ranks` with LoRA of those ranks around their frozen trained weights."""
        frozen = switch_to_lora(network, ranks, self.alpha, self.scaling == "rslora", peft_init(self.init))
        self.switched = dict(ranks)
        self.frozen_learned = sorted(set(self.frozen_learned) | set(frozen))

    def replay(self) -> dict[str, Any]:
        return {"switched": dict(self.switched)} if self.switched else {}

    def stored_frozen(self, network: nn.Module) -> set[str]:
        return set(self.frozen_learned)


@dataclass
class Window:
    """One window of optimizer steps: mean training loss, and per module the Frobenius norm of its
    weight at the window's end and the mean Frobenius norm of its gradient over the window."""

    loss: float
    weight_norms: dict[str, float]
    grad_norms: dict[str, float]


def percent_change(old: float, new: float) -> float:
    """100 * |new - old| / |old| (inf when old is 0 and new is not)."""
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return 100.0 * abs(new - old) / abs(old)


def converged(windows: list[Window], families: dict[str, list[str]], loss_threshold: float,
              weight_threshold: float) -> bool:
    """PreLoRA's partial-convergence test over consecutive windows.

    Loss: the mean loss changes by at most `loss_threshold` % between every two consecutive windows.
    Weights: for every family (here: an adapter part, e.g. `wpe`), the change of the weight *norm*
    (not the norm of the change), averaged over the family's modules, stays below `weight_threshold` %.
    """
    if len(windows) < 2:
        return False
    for a, b in zip(windows, windows[1:]):
        if percent_change(a.loss, b.loss) > loss_threshold:
            return False
        for modules in families.values():
            changes = [percent_change(a.weight_norms[m], b.weight_norms[m]) for m in modules]
            if sum(changes) / len(changes) >= weight_threshold:
                return False
    return True


def rank_ladder(low: int, high: int) -> list[int]:
    """Powers of two from `low` to `high`: 4, 8, 16, 32 for PreLoRA's defaults."""
    if low < 1 or high < low:
        raise ValueError(f"need 1 <= low_rank <= high_rank, got {low}, {high}")
    ladder = [low]
    while ladder[-1] * 2 <= high:
        ladder.append(ladder[-1] * 2)
    return ladder


def assign_ranks(previous: Window, last: Window, low: int, high: int) -> dict[str, int]:
    """Rank per module from the change of its gradient norm over the last two windows.

    g_m = percent change of |grad W_m|; v_m = min-max normalised g_m over all switched modules; rank
    index = ceil(v_m * n) - 1 (0 when v_m = 0) on the ladder of n powers of two. More change, higher
    rank. All modules equal (or a single module) gives every module the lowest rank.
    """
    ladder = rank_ladder(low, high)
    change = {m: percent_change(previous.grad_norms[m], last.grad_norms[m]) for m in last.grad_norms}
    lo, hi = min(change.values()), max(change.values())
    if math.isinf(hi):  # a gradient that was exactly zero before: that module changed most
        change = {m: float(math.isinf(g)) for m, g in change.items()}
        lo, hi = 0.0, 1.0
    ranks = {}
    for module, g in change.items():
        v = 0.0 if hi == lo else (g - lo) / (hi - lo)
        ranks[module] = ladder[max(math.ceil(v * len(ladder)) - 1, 0)]
    return ranks


def cap_ranks(ranks: dict[str, int], shapes: dict[str, tuple[int, int]], low: int, high: int) -> dict[str, int]:
    """Lower each rank until the module's LoRA (r * (rows + cols)) has fewer parameters than its
    full weight (rows * cols); a module where even `low` does not pay keeps training in full (dropped).

    PreLoRA's ladder was made for 1024x1024 ViT projections; here the patch embedding is 16x768, where
    rank 16 already costs more than the full matrix.
    """
    ladder = rank_ladder(low, high)
    capped = {}
    for module, rank in ranks.items():
        rows, cols = shapes[module]
        fitting = [r for r in ladder if r <= rank and r * (rows + cols) < rows * cols]
        if fitting:
            capped[module] = fitting[-1]
    return capped
