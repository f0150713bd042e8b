"""Dropout at One-for-All's shapes: torch's CPU dropout against one4all's packed-lane dropout.

    python scripts/bench_dropout.py --batch 32 --threads 1

Shapes of ETTh1 L=336 (42 patch tokens, GPT-2 small): the residual/MLP/embedding sites
[batch, 42, 768] and the attention probabilities [batch, 12, 42, 42]. For each shape and precision:
the mask alone (`bernoulli_` into a tensor of that dtype, as torch's dropout draws it, against
`keep_mask`), and dropout forward + backward (`F.dropout` against `one4all.models.fast_dropout.dropout`),
in ms, best of `--reps` (process CPU time with `--clock cpu`).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from one4all.models.fast_dropout import dropout, keep_mask

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_ms(fn, reps: int, clock) -> float:
    """Best of `reps` calls of `fn`, after one warm-up call, in ms."""
    fn()
    best = float("inf")
    for _ in range(reps):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return round(best * 1e3, 3)


def measure(shape: tuple[int, ...], dtype: torch.dtype, p: float, reps: int, clock) -> dict:
    """Mask-only and dropout forward + backward times (ms) of torch and one4all at one shape and dtype."""
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    grad = torch.randn(shape, dtype=dtype)
    return {"mask_bernoulli_ms": best_ms(lambda: torch.empty(shape, dtype=dtype).bernoulli_(1 - p), reps, clock),
            "mask_packed_ms": best_ms(lambda: keep_mask(shape, p), reps, clock),
            "torch_ms": best_ms(lambda: F.dropout(x, p, training=True).backward(grad), reps, clock),
            "one4all_ms": best_ms(lambda: dropout(x, p).backward(grad), reps, clock)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--p", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = {"residual": (args.batch, 42, 768), "attention": (args.batch, 12, 42, 42)}
    print("| site | dtype | mask: bernoulli_ | mask: packed lanes | dropout fwd+bwd: torch | "
          "dropout fwd+bwd: one4all | speed-up fwd+bwd |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for site, shape in shapes.items():
        for dtype in (torch.float32, torch.bfloat16):
            row = {"site": site, "dtype": str(dtype).split(".")[-1], "shape": list(shape),
                   **measure(shape, dtype, args.p, args.reps, CLOCKS[args.clock])}
            rows.append(row)
            print(f"| {site} | {row['dtype']} | {row['mask_bernoulli_ms']:.2f} | {row['mask_packed_ms']:.2f} | "
                  f"{row['torch_ms']:.2f} | {row['one4all_ms']:.2f} | {row['torch_ms'] / row['one4all_ms']:.2f}x |")
    print(json.dumps({"batch": args.batch, "p": args.p, "threads": torch.get_num_threads(), "clock": args.clock,
                      "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
