"""One4all's training step next to the authors' own, in interleaved fresh processes with GEMM calibration.

    python scripts/bench_peers.py --peers DIR --data-root ../shared/data

DIR holds local checkouts of the authors' code (never vendored here), found by their files:
One-for-All `*/Long-term_Forecasting/models/GPT2_rsLoRA.py` (github.com/Prasanjit-Dey/One_for_All)
and GPT4TS `*/Long-term_Forecasting/models/GPT4TS.py` (github.com/DAMO-DI-ML/NeurIPS2023-One-Fits-All).
Their model modules are imported from DIR and run: point it only at code you trust. They import
einops (both) and loralib (One-for-All, unused): `pip install einops loralib`.

Each measurement is a fresh process (`--worker`) that measures the GEMM peak of its precision, runs
`--warmup` untimed and `--steps` timed training steps, and measures the GEMM peak again. Runs of
ours and theirs alternate (the order flips every round), `--rounds` times. The same batches go
to both: the first ETTh1 training batches of one4all's loader, L=336 -> H=96, `batch` channel
windows of shape [batch, 336, 1] (the authors' forward folds channels into the batch the same way).

The authors' step is their training loop's: `model(x, itr)`, the last H outputs, MSE, backward,
Adam (lr 1e-4) over `model.parameters()`. Their network is built from their module with the ETTh1
script's settings (patch 16, stride 8, 6 GPT-2 blocks, d_model 768) and random init (their
`pretrain=0` branch, as ours with `model.backbone.init=random`); One-for-All is wrapped with their
peft rsLoRA config (r=16, alpha=16, Gaussian init, `wpe` + `out_layer`, LoRA dropout 0.01), GPT4TS
gets their pretrained-run freezing (only LayerNorms and `wpe` of GPT-2 train). bf16 = autocast
around forward and loss for both. Their GPT-2 attention: `--their-attn eager` (default: GPT-2's
only attention in the transformers of their time, and the faster one for CPU training) or
`default` (what the installed transformers picks for their code: sdpa).

Result per configuration: median samples/s of each side, and the median over rounds of the
calibrated ratio (ours / theirs, each rate divided by the mean GEMM peak measured around its own
run), which cancels the machine's speed swings; for ours also the % of the roofline.

`--paired`: each fresh process builds both networks and alternates their steps on the same batch
(the order flipping every step); the ratio is the median over all step pairs of their step time
over ours. On a shared machine whose load moves within seconds this resolves differences of a
few percent that separate processes cannot.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from bench import ETTH1, batches, step_functions
from roofline import gemm_peak_gflops, network_flops

from one4all.config import compose_config
from one4all.train import build

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
# model -> (our adapter preset, the authors' module file under Long-term_Forecasting/, its class)
MODELS = {"one4all": ("reference", "models/GPT2_rsLoRA.py", "GPT2_rsLoRA"),
          "gpt4ts": ("gpt4ts", "models/GPT4TS.py", "GPT4TS")}
SEQ_LEN, HORIZON = 336, 96


def find_peer(root: Path, model: str) -> Path:
    """The authors' `Long-term_Forecasting` folder for `model` under `root`."""
    suffix = MODELS[model][1]
    hits = sorted(p for p in root.glob(f"*/Long-term_Forecasting/{suffix}") if p.is_file())
    if not hits:
        sys.exit(f"error: no */Long-term_Forecasting/{suffix} under {root}; clone the authors' repository there")
    return hits[0].parent.parent


def commit_of(folder: Path) -> str:
    """The checkout's git commit, or `unknown`."""
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def our_step(model: str, batch: int, data_root: str, dtype: torch.dtype | None, n: int, overrides: list[str]):
    """(training step, batches, GFLOP per sample, attention kernel) of one4all's network."""
    cfg, _ = compose_config([*ETTH1, f"adapter={MODELS[model][0]}", f"data.root={data_root}",
                             f"data.batch_size={batch}", *overrides])
    torch.manual_seed(cfg.seed)
    run = build(cfg)
    data, _ = batches(run, n)
    run.network.train()
    train_step, _ = step_functions(run, dtype)
    flops = network_flops(run.network)
    return train_step, data, flops.train / 1e9, run.network.gpt2.config._attn_implementation


def their_network(model: str, folder: Path) -> torch.nn.Module:
    """The authors' network from their module in `folder`, set up as their training script does."""
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(f"models.{MODELS[model][2]}")
    except ImportError as err:
        sys.exit(f"error: the authors' {model} code cannot be imported ({err}); pip install einops loralib")
    configs = SimpleNamespace(is_gpt=1, patch_size=16, pretrain=0, stride=8, seq_len=SEQ_LEN, gpt_layers=6,
                              d_model=768, pred_len=HORIZON, freeze=1)
    torch.manual_seed(2021)
    net = getattr(module, MODELS[model][2])(configs, torch.device("cpu"))
    if model == "one4all":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(init_lora_weights="gaussian", use_rslora=True, r=16, lora_alpha=16,
                          target_modules=["wpe", "out_layer"], lora_dropout=0.01, bias="none")
        return get_peft_model(net, lora)
    # Their freezing applies to pretrained runs only (`configs.freeze and configs.pretrain`): apply it
    # to the random GPT-2 too, so both sides train the same parameters.
    for name, param in net.gpt2.named_parameters():
        param.requires_grad = "ln" in name or "wpe" in name
    return net


def their_step(model: str, folder: Path, dtype: torch.dtype | None, attn: str):
    """(training step, attention kernel) of the authors' network: their loop's forward/loss/backward/Adam."""
    net = their_network(model, folder)
    gpt2 = net.base_model.model.gpt2 if model == "one4all" else net.gpt2
    if attn != "default":
        gpt2.config._attn_implementation = attn
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None)

    def step(batch: dict) -> None:
        optimizer.zero_grad()
        with autocast:
            out = net(batch["x"], 0)[:, -HORIZON:, :]
            loss = F.mse_loss(out.float(), batch["y"])
        loss.backward()
        optimizer.step()

    return step, gpt2.config._attn_implementation


def worker(args) -> None:
    """One measurement in this process (ours, theirs, or both step by step: `paired`); prints one JSON line."""
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = PRECISIONS[args.precision]
    ours, data, gflop, attn = our_step(args.model, args.batch, args.data_root, dtype, args.warmup + args.steps,
                                       args.set)
    steps, kernels = {}, {}
    if args.impl in ("ours", "paired"):
        steps["ours"], kernels["ours"] = ours, attn
    if args.impl in ("theirs", "paired"):
        steps["theirs"], kernels["theirs"] = their_step(args.model, find_peer(args.peers, args.model), dtype,
                                                        args.their_attn)
    peak = [gemm_peak_gflops(dtype or torch.float32, size, reps=3, clock=clock) for size in (1024, 2048)]
    for batch in data[: args.warmup]:
        for step in steps.values():
            step(batch)
    times = {name: [] for name in steps}
    for i, batch in enumerate(data[args.warmup:]):
        # Paired: both sides on the same batch back to back, the order flipping every step.
        for name in list(steps) if i % 2 == 0 else list(steps)[::-1]:
            start = clock()
            steps[name](batch)
            times[name].append(clock() - start)
    peak_after = [gemm_peak_gflops(dtype or torch.float32, size, reps=3, clock=clock) for size in (1024, 2048)]
    gemm = (max(peak) + max(peak_after)) / 2
    samples = sum(len(b["x"]) for b in data[args.warmup:])
    row = {"impl": args.impl, "model": args.model, "batch": args.batch, "precision": args.precision,
           "gemm_gflops": gemm, "attn": kernels}
    for name, spent in times.items():
        rate = samples / sum(spent)
        row[f"{name}_samples_per_s"] = rate
        row[f"{name}_step_s"] = spent
        if name == "ours":
            row["roofline_pct"] = 100 * rate * gflop / gemm
    print(json.dumps(row))


def spawn(args, impl: str, model: str, batch: int, precision: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--impl", impl, "--model", model, "--batch", str(batch),
           "--precision", precision, "--peers", str(args.peers), "--data-root", args.data_root,
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--clock", args.clock,
           "--their-attn", args.their_attn, "--set", *args.set]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{impl} {model} batch {batch} {precision} failed:\n{out.stderr[-3000:]}{out.stdout[-2000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in row.items() if not k.endswith("_step_s")}), flush=True)
    return row


def summary(rows: list[dict]) -> list[dict]:
    """Per configuration: median samples/s of each side and the median ratio ours / theirs.

    Separate processes: per round, (ours / its GEMM peak) / (theirs / its GEMM peak). Paired: per
    step pair, their step time / ours.
    """
    out = []
    keys = sorted({(r["model"], r["batch"], r["precision"]) for r in rows})
    for model, batch, precision in keys:
        same = [r for r in rows if (r["model"], r["batch"], r["precision"]) == (model, batch, precision)]
        ours = [r for r in same if "ours_samples_per_s" in r]
        theirs = [r for r in same if "theirs_samples_per_s" in r]
        paired = [r for r in same if r["impl"] == "paired"]
        if paired:
            ratios = [t / o for r in paired for o, t in zip(r["ours_step_s"], r["theirs_step_s"], strict=True)]
        else:
            ratios = [(o["ours_samples_per_s"] / o["gemm_gflops"]) / (t["theirs_samples_per_s"] / t["gemm_gflops"])
                      for o, t in zip(ours, theirs, strict=True)]
        out.append({"model": model, "batch": batch, "precision": precision, "paired": bool(paired),
                    "ratios": len(ratios),
                    "ours_samples_per_s": round(statistics.median(o["ours_samples_per_s"] for o in ours), 2),
                    "theirs_samples_per_s": round(statistics.median(t["theirs_samples_per_s"] for t in theirs), 2),
                    "ratio": round(statistics.median(ratios), 3),
                    "ratio_quartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)] if len(ratios) > 1
                    else [round(ratios[0], 3)] * 3,
                    "ours_roofline_pct": round(statistics.median(o["roofline_pct"] for o in ours), 1),
                    "gemm_gflops": round(statistics.median(r["gemm_gflops"] for r in same), 1),
                    "attn": {**ours[0]["attn"], **theirs[0]["attn"]}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, required=True, help="folder with the authors' checkouts")
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--precisions", nargs="+", default=["bf16"], choices=list(PRECISIONS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paired", action="store_true",
                        help="ours and theirs in one process, alternating step by step on the same batches")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--their-attn", choices=["eager", "default"], default="eager",
                        help="the authors' GPT-2 attention (module doc)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for our side, e.g. model.fast_dropout=false")
    parser.add_argument("--out", type=Path, default=None, help="also write rows and summary here as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=["ours", "theirs", "paired"], help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=list(PRECISIONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.peers = args.peers.resolve()
    if args.worker:
        worker(args)
        return
    commits = {model: commit_of(find_peer(args.peers, model)) for model in args.models}
    machine = {"loadavg_start": os.getloadavg(), "threads": args.threads or torch.get_num_threads(),
               "clock": args.clock, "their_attn": args.their_attn, "ours_overrides": args.set,
               "paired": args.paired,
               "torch": torch.__version__, "peer_commits": commits}
    print(json.dumps(machine), flush=True)
    rows = []
    for round_ in range(args.rounds):
        order = ("paired",) if args.paired else ("ours", "theirs") if round_ % 2 == 0 else ("theirs", "ours")
        for model in args.models:
            for batch in args.batches:
                for precision in args.precisions:
                    rows += [spawn(args, impl, model, batch, precision) for impl in order]
    machine["loadavg_end"] = os.getloadavg()
    result = summary(rows)
    print("| model | batch | precision | ours samples/s | authors' samples/s | ratio (median) | quartiles | "
          "ours % of roofline |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for r in result:
        q = r["ratio_quartiles"]
        print(f"| {r['model']} | {r['batch']} | {r['precision']} | {r['ours_samples_per_s']:.2f} | "
              f"{r['theirs_samples_per_s']:.2f} | {r['ratio']:.3f}x | {q[0]:.3f}-{q[2]:.3f} | "
              f"{r['ours_roofline_pct']:.1f} |")
    print(json.dumps(machine))
    if args.out:
        args.out.write_text(json.dumps({"machine": machine, "rows": rows, "summary": result}, indent=2))


if __name__ == "__main__":
    main()
