"""Training and inference speed against this machine's matmul roofline, in one process.

    python scripts/bench.py --data-root ../shared/data --out bench.json

Measures the fp32 and bf16 GEMM peak first (best of 3 square products of each of `--gemm-sizes`), then for each
network (built from its experiment config, random-init GPT-2 small with 6 blocks, ETTh1 L=336
H=96, `--batch` channel windows per step) and precision (fp32; bf16 = autocast as Lightning's
`bf16-mixed`): `--warmup` untimed training steps, `--steps` timed training steps (forward, MSE,
backward, the task's Adam step) on batches from the real training loader, then `--steps` timed
inference batches under inference_mode after one warm-up. The loader itself is timed apart.
A sample is one channel window; tokens are patch tokens through the Transformer. "% of roofline"
= measured samples/s x analytic FLOPs per sample (one4all.flops) / measured GEMM peak of the same
precision (DESIGN.md §6). Peak RSS is the process peak while that configuration ran.
`--clock cpu --threads 1` times process CPU time on one thread instead of wall time: a per-core
figure that other jobs on a shared machine disturb much less (with 2 threads CPU time would count
the threads' spin-waiting).

`--device cuda` runs the same on a GPU (autocast on CUDA, synchronised timing, the GEMM peak of
that GPU; peak memory is `torch.cuda.max_memory_allocated`). `--set KEY=VALUE ...` adds config
overrides to every network, e.g. `--set model.backbone.compile=true`.

Linear-probe rows show the frozen-backbone fast paths: `autograd` is the plain path (GPT-2 run with
autograd enabled, as before the fast path), `no_grad` the automatic gradient-free front, `cached`
the backbone feature cache after its first pass over the same batches (a second epoch); the
first-pass (cache-filling) speed is reported as `fill_samples_per_s`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from roofline import gemm_peak_gflops, network_flops, peak_rss_since_reset_mb, reset_peak_rss, synchronize

from one4all.config import compose_config
from one4all.models.one4all import One4All
from one4all.train import build

ETTH1 = ["experiment=long_term/etth1_96", "model.backbone.init=random"]
# label -> (overrides, the linear probe's plain autograd path)
CONFIGS = {
    "one4all": ([*ETTH1, "adapter=reference"], False),
    "gpt4ts": ([*ETTH1, "adapter=gpt4ts"], False),
    "patchtst": (["experiment=long_term/etth1_96_patchtst42"], False),
    "linear_probe/autograd": ([*ETTH1, "adapter=linear_probe"], True),
    "linear_probe/no_grad": ([*ETTH1, "adapter=linear_probe"], False),
    "linear_probe/cached": ([*ETTH1, "adapter=linear_probe", "model.cache_backbone_features=true"], False),
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter
device = torch.device("cpu")


def batches(run, n: int) -> tuple[list[dict], float]:
    """The first `n` training batches of the real loader (on `device`), and the loader's own samples/s."""
    loader = iter(run.datamodule.train_dataloader())
    next(loader)
    start = clock()
    out = [next(loader) for _ in range(n)]
    rate = sum(len(b["x"]) for b in out) / (clock() - start)
    return [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in out], rate


def timed(fn, data: list[dict]) -> float:
    """samples/s of `fn(batch)` over `data`."""
    synchronize(device)
    start = clock()
    for batch in data:
        fn(batch)
    synchronize(device)
    return sum(len(b["x"]) for b in data) / (clock() - start)


def reset_peak_memory() -> None:
    """Start a new peak-memory mark: process RSS on the CPU, allocated memory on a GPU."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()


def peak_memory_mb() -> float:
    """Peak since `reset_peak_memory`, MB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_since_reset_mb()


def step_functions(run, dtype: torch.dtype | None):
    """(training step, inference step) on a batch: the task's loss and optimiser, autocast for bf16."""
    task = run.task
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def train_step(batch: dict) -> None:
        with autocast:
            loss = F.mse_loss(task.predict_batch(batch).float(), batch["y"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer(batch: dict) -> None:
        with torch.inference_mode(), autocast:
            task.predict_batch(batch)

    return train_step, infer


def measure(run, data: list[dict], warmup: int, dtype: torch.dtype | None) -> dict:
    """Training and inference samples/s of one network at one precision."""
    net = run.network
    train_step, infer = step_functions(run, dtype)
    row = {}
    reset_peak_memory()
    net.train()
    cache = getattr(net, "feature_cache", None)
    if cache is not None:  # first epoch: every sequence is a miss
        cache.clear()
        row["fill_samples_per_s"] = round(timed(train_step, data), 2)
    timed(train_step, data[:warmup])
    row["train_samples_per_s"] = timed(train_step, data[warmup:])
    net.eval()
    timed(infer, data[:1])
    row["inference_samples_per_s"] = timed(infer, data[warmup:])
    row["peak_rss_mb"] = round(peak_memory_mb(), 1)
    return row


def profile_steps(run, batch: dict, dtype: torch.dtype | None, top: int) -> dict[str, list[dict]]:
    """Top operators by self CPU time (% of the step) of one training and one inference step."""
    train_step, infer = step_functions(run, dtype)
    out = {}
    for kind, fn, mode in (("train", train_step, True), ("inference", infer, False)):
        run.network.train(mode)
        fn(batch)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn(batch)
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        out[kind] = [{"op": e.key, "calls": e.count, "self_ms": round(e.self_cpu_time_total / 1e3, 1),
                      "pct": round(100 * e.self_cpu_time_total / total, 1)} for e in events[:top]]
        print(f"profile {kind}: " + ", ".join(f"{e['op']} {e['pct']}%" for e in out[kind]), flush=True)
    return out


def bench_config(label: str, overrides: list[str], plain: bool, args, peaks: dict) -> list[dict]:
    cfg, _ = compose_config([*overrides, f"data.root={args.data_root}", f"data.batch_size={args.batch}",
                             *args.set])
    torch.manual_seed(cfg.seed)
    run = build(cfg)
    run.network.to(device)
    data, loader_rate = batches(run, args.warmup + args.steps)
    flops = network_flops(run.network)
    tokens = getattr(run.network, "n_patches", None)
    cached = getattr(run.network, "feature_cache", None) is not None
    rows = []
    patch = mock.patch.object(One4All, "front_trainable", lambda self: ["plain path"]) if plain \
        else contextlib.nullcontext()
    with patch:
        for precision in args.precisions:
            dtype = PRECISIONS[precision]
            row = {"model": label, "precision": precision, "batch": args.batch, "tokens_per_sample": tokens,
                   **measure(run, data, args.warmup, dtype), "loader_samples_per_s": round(loader_rate, 1)}
            for kind in ("train", "inference", "fill"):
                if f"{kind}_samples_per_s" not in row:
                    continue
                rate = row[f"{kind}_samples_per_s"]
                row[f"{kind}_samples_per_s"] = round(rate, 2)
                row[f"{kind}_tokens_per_s"] = round(rate * tokens, 1) if tokens else None
                # Cache hits skip GPT-2: its FLOPs were not spent, so no roofline fraction.
                if flops is not None and not (cached and kind != "fill"):
                    per_sample = flops.train if kind != "inference" else flops.forward
                    row[f"{kind}_roofline_samples_per_s"] = round(peaks[precision] * 1e9 / per_sample, 1)
                    row[f"{kind}_roofline_pct"] = round(100 * rate * per_sample / (peaks[precision] * 1e9), 1)
            row["flops"] = flops.as_dict() if flops else None
            rows.append(row)
            print(json.dumps(row), flush=True)
        if label in args.profile:
            rows[-1]["profile"] = profile_steps(run, data[0], PRECISIONS[rows[-1]["precision"]], top=12)
    run.network.cpu()  # free the device for the next network
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: the side-by-side roofline table."""
    lines = ["| model | precision | train samples/s | train % of roofline | inference samples/s | "
             "inference % of roofline | peak RSS (MB) |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        pct = [f"{r[k]:.1f}" if r.get(k) is not None else "n/a" for k in ("train_roofline_pct",
                                                                          "inference_roofline_pct")]
        lines.append(f"| {r['model']} | {r['precision']} | {r['train_samples_per_s']:,.1f} | {pct[0]} | "
                     f"{r['inference_samples_per_s']:,.1f} | {pct[1]} | {r['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--gemm-sizes", type=int, nargs="+", default=[1024, 2048, 4096],
                        help="square matmul sizes; the GEMM peak is the best over them")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--profile", nargs="*", default=[], choices=list(CONFIGS),
                        help="also profile one training and inference step of these models (last precision)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N for a GPU")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every network, e.g. model.backbone.compile=true")
    parser.add_argument("--out", type=Path, default=None, help="also write the results here as JSON")
    args = parser.parse_args()
    global clock, device
    clock = CLOCKS[args.clock]
    device = torch.device(args.device)
    if device.type == "cuda" and args.clock == "cpu":
        parser.error("--clock cpu measures the CPU; time a GPU with --clock wall")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "clock": args.clock,
               "torch": torch.__version__, "loadavg_start": os.getloadavg(), "device": str(device),
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
               "overrides": args.set}
    peaks = {name: round(max(gemm_peak_gflops(dtype or torch.float32, size, reps=3, clock=clock, device=device)
                             for size in args.gemm_sizes), 1) for name, dtype in PRECISIONS.items()}
    print(json.dumps({"gemm_peak_gflops": peaks, **machine}), flush=True)
    rows = [row for label in args.models for row in bench_config(label, *CONFIGS[label], args, peaks)]
    machine.update(loadavg_end=os.getloadavg(), wall_s=round(time.perf_counter() - started, 1))
    print(table(rows))
    print(json.dumps({"gemm_peak_gflops": peaks, **machine}))
    if args.out:
        args.out.write_text(json.dumps({"machine": machine, "gemm_peak_gflops": peaks, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
