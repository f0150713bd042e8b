"""Run a trained network for inference as it ran in training: same precision, same device kind, batched."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

# Series per forward pass at inference: large enough to keep a GPU busy, small enough for CPU memory.
INFERENCE_BATCH = 1024


def autocast(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """The autocast Lightning used for `precision`, so inference computes what training evaluated."""
    device_type = torch.device(device).type
    if precision.startswith("bf16") and precision.endswith("mixed"):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    if precision.startswith("16") and precision.endswith("mixed"):
        return torch.autocast(device_type, dtype=torch.float16)
    return contextlib.nullcontext()


def inference_device(trained_on: str | None) -> torch.device:
    """The GPU when the model was trained on one and one is present, else the CPU."""
    if trained_on == "cuda" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def forward_batches(network: nn.Module, x: torch.Tensor, precision: str, device: torch.device,
                    batch_size: int = INFERENCE_BATCH, marks: torch.Tensor | None = None) -> torch.Tensor:
    """`network(x)` in batches of `batch_size` samples on `device` under the training precision (float32, CPU);
    `marks[samples, seq_len, n_marks]`, when given, go with their samples as `marks=`."""
    network.to(device)
    outputs = []
    with torch.no_grad(), autocast(precision, device):
        for start in range(0, len(x), batch_size):
            # Contiguous like the loader's batches: a strided view takes other kernels (last-bit changes).
            chunk = x[start:start + batch_size].contiguous().to(device)
            extra = {} if marks is None else {"marks": marks[start:start + batch_size].contiguous().to(device)}
            outputs.append(network(chunk, **extra).float().cpu())
    return torch.cat(outputs) if outputs else x.new_zeros((0,))
