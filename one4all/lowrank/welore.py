"""WeLore: data-free, non-uniform rank reduction of the GPT-2 block projections (METHODS.md §3).

Each matrix (c_attn analysed as its Q, K and V column blocks) gets its singular values min-max
normalised; one global threshold k prunes the ranks whose normalised value is below k. A matrix
that loses more than `min_ratio` of its rank is a low-rank component (LRC): it becomes a
trainable factor pair. The others (N-LRC) stay dense and frozen, as do the biases. k is found by
bisection so that the effective rank reduction ERR = 1 - sum(kept) / sum(full) reaches
`rank_reduction` (WeLore's k table is calibrated for LLaMA-2, not GPT-2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from one4all.adapters.lora import LoRASpec
from one4all.errors import UserError
from one4all.lowrank.factorised import FactorisedConv1D


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run LAPACK on one thread: 768-sized decompositions gain little from threads, and on shared
    cores the threads' barriers stall them (eigvalsh: 0.14 s on one thread, 5 s on two, under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def normalised_spectrum(weight: torch.Tensor) -> torch.Tensor:
    """Singular values of `weight`, min-max scaled to [0, 1], ascending."""
    w = weight.detach().to(torch.float64)
    # Eigenvalues of the smaller Gram matrix: the same values (to ~1e-14 here) at a fraction of
    # svdvals' cost on GPT-2's 768 x 3072 matrices.
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    sigma = torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt()
    return torch.sort((sigma - sigma.min()) / (sigma.max() - sigma.min()).clamp_min(1e-300)).values


def kept_ranks(spectra: list[torch.Tensor], k: float, min_ratio: float) -> list[int | None]:
    """Per matrix: the kept rank if it is an LRC at threshold `k`, else None (stays dense)."""
    kept: list[int | None] = []
    for spectrum in spectra:
        full = len(spectrum)
        pruned = int(torch.searchsorted(spectrum, torch.tensor(k, dtype=spectrum.dtype)))
        kept.append(full - pruned if pruned / full > min_ratio else None)
    return kept


def rank_reduction(spectra: list[torch.Tensor], kept: list[int | None]) -> float:
    """ERR = 1 - sum of ranks after compression / sum of full ranks (dense matrices keep theirs)."""
    full = sum(len(s) for s in spectra)
    return 1.0 - sum(len(s) if r is None else r for s, r in zip(spectra, kept)) / full


def find_threshold(spectra: list[torch.Tensor], target: float, min_ratio: float, steps: int = 60) -> float:
    """The smallest global k (by bisection) whose ERR reaches `target`; ERR grows with k."""
    highest = rank_reduction(spectra, kept_ranks(spectra, 1.0, min_ratio))
    if not 0.0 < target <= highest:
        raise UserError(f"adapter.rank_reduction={target}; these matrices allow (0, {highest:.3f}] "
                        f"with min_ratio={min_ratio}")
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        if rank_reduction(spectra, kept_ranks(spectra, middle, min_ratio)) >= target:
            high = middle
        else:
            low = middle
    return high


@dataclass
class WeLoreSpec(LoRASpec):
    """The preset's adapters (default: rsLoRA on wpe + head) on a WeLore-compressed backbone.

    welore_targets: projection parts to compress; rank_reduction: target ERR; min_ratio: LRC
    cut-off; split_qkv: analyse c_attn's Q, K, V separately. kept_ranks (module -> per-group kept
    rank, null = dense) is estimated when null and replayed when a saved model is rebuilt.
    """

    welore_targets: list[str] = field(default_factory=lambda: ["c_attn", "attn_proj", "mlp_fc", "mlp_proj"])
    rank_reduction: float = 0.5
    min_ratio: float = 0.4999
    split_qkv: bool = True
    kept_ranks: dict[str, list[int | None]] | None = None

    def resolved(self) -> tuple[list[str], list[str]]:
        lora, full = super().resolved()
        clash = sorted(set(self.welore_targets) & set(lora + full))
        if clash:
            raise UserError(f"{', '.join(clash)} are compressed by WeLore; drop them from adapter.lora_targets / "
                            "adapter.train_full or from adapter.welore_targets")
        return lora, full

    def apply(self, network: nn.Module) -> None:
        """The preset's adapters, plus every factor pair that `prepare` created trains in full."""
        super().apply(network)
        for module in network.modules():
            if isinstance(module, FactorisedConv1D):
                module.factors_requires_grad_(True)

    def prepare(self, network: nn.Module) -> dict[str, Any]:
        with single_thread():
            return self._prepare(network)

    def _prepare(self, network: nn.Module) -> dict[str, Any]:
        names, slices = self._matrices(network)
        spectra = [normalised_spectrum(w) for _, w in slices]
        report: dict[str, Any] = {"method": "welore", "target_rank_reduction": self.rank_reduction,
                                  "min_ratio": self.min_ratio}
        if self.kept_ranks is None:
            k = find_threshold(spectra, self.rank_reduction, self.min_ratio)
            self.kept_ranks = {}
            for (name, _), rank in zip(slices, kept_ranks(spectra, k, self.min_ratio)):
                self.kept_ranks.setdefault(name, []).append(rank)
            report["threshold_k"] = round(k, 6)
        elif sorted(self.kept_ranks) != sorted(names) or any(
                len(self.kept_ranks[n]) != len([s for s in slices if s[0] == n]) for n in names):
            raise UserError("adapter.kept_ranks does not match the WeLore targets of this network; "
                            "set it to null to re-estimate")
        flat = [r for name in names for r in self.kept_ranks[name]]
        modules: dict[str, list[dict[str, Any]]] = {}
        for (name, w), rank in zip(slices, flat):
            full = min(w.shape)
            modules.setdefault(name, []).append({"full_rank": full, "kept_rank": full if rank is None else rank,
                                                 "lrc": rank is not None})
        original, compressed = self._compress(network, names)
        report.update({"rank_reduction": round(rank_reduction(spectra, flat), 4), "original_params": original,
                       "compressed_params": compressed, "compressed_ratio": round(compressed / original, 4),
                       "lrc": sum(r is not None for r in flat), "matrices": len(flat), "modules": modules})
        return report

    def _matrices(self, network: nn.Module) -> tuple[list[str], list[tuple[str, torch.Tensor]]]:
        """Target module names and their analysed matrices (module, W[in, out_group]) in order."""
        if not 0.0 <= self.min_ratio < 1.0:
            raise UserError(f"adapter.min_ratio={self.min_ratio}; use a value in [0, 1)")
        parts = network.lora_parts()
        unknown = [t for t in self.welore_targets if t not in parts or not parts[t] or "gpt2.h." not in parts[t][0]]
        if unknown:
            raise UserError(f"WeLore targets {unknown} are not GPT-2 block projections; use c_attn attn_proj "
                            "mlp_fc mlp_proj on model/backbone=gpt2 (WeLore factorises GPT-2's Conv1D projections)")
        names = [name for part in self.welore_targets for name in parts[part]]
        slices = []
        for name in names:
            weight = network.get_submodule(name).weight
            groups = 3 if self.split_qkv and name.endswith("c_attn") else 1
            slices += [(name, w) for w in weight.split(weight.shape[1] // groups, dim=1)]
        return names, slices

    def _compress(self, network: nn.Module, names: list[str]) -> tuple[int, int]:
        """Swap every module with an LRC for its factorised form; (weight params before, after)."""
        original = compressed = 0
        for name in names:
            conv = network.get_submodule(name)
            original += conv.weight.numel()
            if all(r is None for r in self.kept_ranks[name]):
                compressed += conv.weight.numel()
                continue
            new = FactorisedConv1D(conv.weight, conv.bias, self.kept_ranks[name])
            compressed += new.weight_params()
            parent, _, child = name.rpartition(".")
            setattr(network.get_submodule(parent), child, new)
        return original, compressed

    def replay(self) -> dict[str, Any]:
        return {"kept_ranks": self.kept_ranks}
