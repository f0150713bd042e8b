"""PreLoRA's rules (METHODS.md §2.3-2.4): when training has partially converged, and which LoRA
rank each module gets. Pure functions over per-window records; the Lightning side is
`adapters/prelora_callback.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
