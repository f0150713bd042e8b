"""fp32 vs bf16 autocast for the One-for-All network on this machine (decides `precision: auto`).

    python scripts/bench_precision.py --seq-len 336 --horizon 96 --batch 64 --steps 5

Random-init GPT-2 small (6 blocks); a sample = one channel window. Prints a JSON line per precision.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from one4all.adapters import AdapterSpec
from one4all.models.backbone import BackboneSpec
from one4all.models.contract import IOSpec
from one4all.models.one4all import One4All


def measure(net: One4All, x: torch.Tensor, steps: int, dtype: torch.dtype | None) -> dict[str, float]:
    autocast = torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    net.train()
    with autocast:
        for i in range(steps + 1):
            if i == 1:  # first step warms up allocations and autocast caches
                start = time.perf_counter()
            loss = net(x).float().pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    train = steps * len(x) / (time.perf_counter() - start)
    net.eval()
    with torch.no_grad(), autocast:
        net(x)
        start = time.perf_counter()
        for _ in range(steps):
            net(x)
    infer = steps * len(x) / (time.perf_counter() - start)
    return {"train_samples_per_s": round(train, 1), "inference_samples_per_s": round(infer, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=336)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--preset", default="reference")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = One4All(IOSpec(args.seq_len, 1, horizon=args.horizon), BackboneSpec(init="random"),
                  AdapterSpec(preset=args.preset))
    x = torch.randn(args.batch, args.seq_len, 1)
    for name, dtype in (("fp32", None), ("bf16-autocast", torch.bfloat16)):
        row = {"precision": name, "preset": args.preset, "seq_len": args.seq_len, "batch": args.batch,
               "threads": torch.get_num_threads(), **measure(net, x, args.steps, dtype)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
