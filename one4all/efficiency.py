"""Cost figures: parameters, artifact bytes, peak memory, throughput."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts."""
    params = list(module.parameters())
    return {"trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "total_params": sum(p.numel() for p in params)}


def directory_bytes(path: str | Path) -> int:
    """Total size of the files under `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def batch_samples(batch: object) -> int:
    """Samples in a batch, where a sample is one channel's window (DESIGN §6)."""
    x = batch["x"] if isinstance(batch, dict) else batch[0]
    return int(x.shape[0] * (x.shape[2] if x.dim() == 3 else 1))


class ThroughputMonitor(L.Callback):
    """Samples per second of training steps (forward+backward+optimiser) and of test batches.

    Wall time of each batch hook pair; the first `warmup` training batches are skipped so that
    one-time costs (allocation, autocast caches) do not dominate short runs.
    """

    def __init__(self, warmup: int = 2) -> None:
        self.warmup = warmup
        self.train_time = self.test_time = 0.0
        self.train_samples = self.test_samples = 0
        self._seen = 0
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._seen += 1
        if self._seen > self.warmup:
            self.train_time += time.perf_counter() - self._start
            self.train_samples += batch_samples(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._start = time.perf_counter()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.test_time += time.perf_counter() - self._start
        self.test_samples += batch_samples(batch)

    def summary(self) -> dict[str, float | None]:
        def rate(n: int, t: float) -> float | None:
            return round(n / t, 2) if t > 0 else None

        return {"train_samples_per_s": rate(self.train_samples, self.train_time),
                "inference_samples_per_s": rate(self.test_samples, self.test_time)}


def resolve_precision(precision: str) -> str:
    """`auto` -> bf16 autocast where the hardware runs bf16 matmuls natively, else fp32.

    On the 2-core AVX-512-BF16 CPUs used here bf16 autocast is ~3x faster for GPT-2 blocks
    (docs/benchmarks.md); without native bf16 it is slower than fp32.
    """
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    # Private torch helpers that not every build has (probed, not called blindly): a build
    # without them cannot tell, and fp32 is the safe answer.
    cpu_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    cpu_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return "bf16-mixed" if (cpu_bf16 or cpu_amx) else "32-true"
