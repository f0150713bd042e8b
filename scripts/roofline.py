"""Benchmark helpers (not part of the package): the machine's GEMM peak, peak memory since a mark,
and analytic matmul FLOPs per sample, for comparing measured speed with the roofline.

Analytic matmul FLOPs per sample, for comparing measured speed with the machine's roofline.

The roofline of DESIGN.md §6: samples/s at the measured GEMM peak = peak FLOP/s / FLOPs per
sample. Only matrix products are counted (2 FLOPs per multiply-accumulate); LayerNorm, softmax,
GELU, dropout and the optimiser are left out, so a step can never reach 100%.

Per Transformer layer and sequence of T tokens, width d, feed-forward width f:
projections (QKV, attention output, the two MLP matrices) 4·T·d² + 2·T·d·f MACs; attention
scores Q·Kᵀ and the weighted sum P·V, 2·T²·d MACs, counted over the full T×T square (GPT-2's
causal mask would allow half; the kernels used here compute whole tiles).

Backward of a product Y = X·W costs one product for dX and one for dW, each as much as the
forward. For a frozen weight only dX is computed, so a frozen GPT-2 under an adapter that sits
below it (One-for-All's LoRA on `wpe`, GPT4TS's `wpe` / LayerNorms / patch embedding) costs
about 2x the forward per training step, not the 3x of full training: projections 1x (dX only),
attention 2x (both operands are activations). When nothing below the head trains, no gradient
enters GPT-2 and a training step costs one forward through it.
"""


from __future__ import annotations

import contextlib
import ctypes
import gc
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from one4all.models.baselines.patchtst import PatchTST


@dataclass(frozen=True)
class FlopCount:
    """FLOPs per sample of a forward pass and of a training step, and how backward was counted."""

    forward: float
    train: float
    backward: str
    scope: str

    def as_dict(self) -> dict:
        return asdict(self)


def transformer_macs(n_tokens: int, d_model: int, d_ff: int, n_layers: int) -> dict[str, int]:
    """Multiply-accumulates of `n_layers` Transformer layers on one sequence: projections and attention."""
    projections = n_layers * n_tokens * (4 * d_model * d_model + 2 * d_model * d_ff)
    attention = n_layers * 2 * n_tokens * n_tokens * d_model
    return {"projections": projections, "attention": attention}


def _trains(module: nn.Module, skip_lora: bool = False) -> bool:
    return any(p.requires_grad for name, p in module.named_parameters() if not (skip_lora and "lora_" in name))


def gpt2_flops(network: nn.Module) -> FlopCount:
    """GPT-2 blocks of a One-for-All / GPT4TS network (`gpt2`, `in_layer`, `n_patches`), per sequence.

    The embedding and head are not counted (for ETTh1 L=336 H=96 they are 0.2% of the blocks).
    """
    gpt2 = network.gpt2
    d = gpt2.config.n_embd
    d_ff = gpt2.config.n_inner or 4 * d
    macs = transformer_macs(network.n_patches, d, d_ff, len(gpt2.h))
    forward = 2 * (macs["projections"] + macs["attention"])
    if not (_trains(gpt2) or _trains(network.in_layer)):
        return FlopCount(forward, forward, "none: nothing below the head trains, no gradient enters GPT-2",
                         "GPT-2 blocks")
    backward = 2 * (macs["projections"] + 2 * macs["attention"])
    how = "activation gradients only (frozen projections: dX, no dW; attention 2x)"
    projections = [m for block in gpt2.h for m in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc,
                                                   block.mlp.c_proj)]
    if any(_trains(m, skip_lora=True) for m in projections):
        backward += 2 * macs["projections"]
        how = "activation and projection weight gradients"
    return FlopCount(forward, forward + backward, how, "GPT-2 blocks")


def patchtst_flops(network: nn.Module) -> FlopCount:
    """PatchTST per channel series: encoder layers, patch embedding and head; everything trains (3x)."""
    first = network.layers[0]
    d_model = first.attention.qkv.in_features
    d_ff = first.feed_forward[0].out_features
    n = network.n_patches
    macs = transformer_macs(n, d_model, d_ff, len(network.layers))
    embed = n * network.embed.in_features * d_model
    head = network.head[1].in_features * network.head[1].out_features
    linear = macs["projections"] + embed + head
    forward = 2 * (linear + macs["attention"])
    # dW for every product, dX for all but the embedding (its input is data); attention 2x.
    backward = 2 * (2 * linear - embed + 2 * macs["attention"])
    return FlopCount(forward, forward + backward, "full: weight and activation gradients",
                     "encoder, patch embedding, head")


def network_flops(network: nn.Module) -> FlopCount | None:
    """The analytic count for the networks that have one (GPT-2 based, PatchTST), else None."""
    if hasattr(network, "gpt2"):
        return gpt2_flops(network)
    if isinstance(network, PatchTST):
        return patchtst_flops(network)
    return None


def reset_peak_rss() -> None:
    """Restart this process's peak-RSS mark at the current RSS (Linux `/proc/self/clear_refs`),
    after handing freed heap back to the OS so earlier allocations do not count."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_since_reset_mb() -> float:
    """Peak resident memory (VmHWM) since the last `reset_peak_rss`, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc/self/status (Linux only)")


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued kernels (CUDA launches asynchronously); nothing to do on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def gemm_peak_gflops(dtype: torch.dtype, size: int = 2048, reps: int = 5, clock=time.perf_counter,
                     device: torch.device | str = "cpu") -> float:
    """The device's matmul peak: the best of `reps` square `size` x `size` products in `dtype`, GFLOP/s.

    `clock` is wall time by default; `time.process_time` gives a one-thread figure that other
    processes on a shared machine disturb less (CPU only).
    """
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    torch.matmul(a, b)  # warm-up: library dispatch, packing buffers
    best = float("inf")
    for _ in range(reps):
        synchronize(device)
        start = clock()
        torch.matmul(a, b)
        synchronize(device)
        best = min(best, clock() - start)
    return 2 * size**3 / best / 1e9
