"""Peak training memory of One-for-All vs GPT4TS at the same batch, against the input length.

    nice -n 10 python scripts/bench_memory.py --seq-lens 96 336 512 720 --batch 64
    nice -n 10 python scripts/bench_memory.py --seq-lens 336 512 1024 2048 --batch 8 \
        --presets reference rslora_all lars --precisions bf16       # LARS-style adapter memory

`--presets` takes adapter presets (`one4all.adapters.PRESETS`) and the variants in `VARIANTS`
(rsLoRA on all block projections, with and without VeLoRA-compressed saved inputs).

Each configuration runs in a fresh process (so no allocator state carries over) that builds the
network (random-init GPT-2 small, 6 blocks, patch 16 stride 8, horizon 96), resets the kernel's
peak-RSS mark (Linux `/proc/self/clear_refs`), then takes `--steps` training steps (forward, MSE,
backward, Adam) on a batch of univariate windows. It reports:
  - `peak_train_mb`: peak resident memory during the steps minus the resident memory before them,
    i.e. what training adds on top of the loaded model (activations, gradients, optimiser state,
    autocast weight copies, allocator slack), as the OS sees it;
  - `saved_mb`: bytes autograd keeps for backward during one forward, counted once per storage
    via `saved_tensors_hooks`: the activation memory proper. Parameters are excluded, and so are
    bf16 autocast copies of the weights, reported apart as `weight_copies_mb` (they do not grow
    with the batch or the length);
  - `optimizer_mb` / `grads_mb`: Adam's two moments and the gradients of the trainable parameters.
Prints one JSON line per configuration, then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MB = 1024 * 1024
PROJECTIONS = ["c_attn", "attn_proj", "mlp_fc", "mlp_proj"]
# Adapter spec arguments of the non-preset variants; dropout off so that no mask of the adapter
# input's size is kept (configs/adapter/lars.yaml).
VARIANTS = {
    "rslora_all": {"lora_targets": ["wpe", "head", *PROJECTIONS], "dropout": 0.0},
    "lars": {"lora_targets": ["wpe", "head", *PROJECTIONS], "dropout": 0.0, "velora_groups": 32,
             "velora_parts": PROJECTIONS},  # built as VeLoRASpec (configs/adapter/lars.yaml)
}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def measure(preset: str, seq_len: int, precision: str, batch: int, horizon: int, steps: int) -> dict:
    """One configuration, in this process."""
    import torch

    from one4all.adapters import LoRASpec
    from one4all.adapters.velora import VeLoRASpec
    from one4all.contract import IOSpec
    from one4all.models.backbone import BackboneSpec
    from one4all.models.one4all import One4All

    torch.manual_seed(0)
    spec = (VeLoRASpec if preset == "lars" else LoRASpec)(**VARIANTS.get(preset, {"preset": preset}))
    net = One4All(IOSpec(seq_len, 1, horizon=horizon), BackboneSpec(init="random", n_layers=6), spec).train()
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-4)
    x, y = torch.randn(batch, seq_len, 1), torch.randn(batch, horizon, 1)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    param_storages = {p.untyped_storage().data_ptr() for p in net.parameters()}
    param_shapes = {tuple(p.shape) for p in net.parameters()} | {tuple(p.shape)[::-1] for p in net.parameters()}

    rss_before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak-RSS (VmHWM) mark here
    saved: dict[int, int] = {}
    copies: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() in param_storages:
            return t
        # Autocast's bf16 cast of a frozen weight: a gradient-free leaf shaped like a parameter.
        is_copy = t.dtype == torch.bfloat16 and t.grad_fn is None and not t.requires_grad and \
            tuple(t.shape) in param_shapes
        (copies if is_copy else saved)[storage.data_ptr()] = storage.nbytes()
        return t

    for step in range(steps):
        with autocast:
            if step == 0:
                with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
                    loss = (net(x).float() - y).pow(2).mean()
            else:
                loss = (net(x).float() - y).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = _status_kb("VmHWM")
    moments = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                  if torch.is_tensor(t) and t.dim() > 0)
    return {
        "preset": preset, "seq_len": seq_len, "n_patches": net.n_patches, "precision": precision, "batch": batch,
        "trainable_params": sum(p.numel() for p in trainable),
        "rss_model_mb": round(rss_before / 1024, 1),
        "peak_train_mb": round((peak - rss_before) / 1024, 1),
        "saved_mb": round(sum(saved.values()) / MB, 1),
        "weight_copies_mb": round(sum(copies.values()) / MB, 1),
        "optimizer_mb": round(moments / MB, 1),
        "grads_mb": round(sum(p.numel() * p.element_size() for p in trainable) / MB, 1),
        "threads": torch.get_num_threads(),
    }


def table(rows: list[dict]) -> str:
    """Markdown: one line per (precision, L), One-for-All next to GPT4TS (and any other preset)."""
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    head = "| precision | L (patches) | " + " | ".join(
        f"{p} peak train MB | {p} saved-for-backward MB" for p in presets) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(presets))]
    keys = list(dict.fromkeys((r["precision"], r["seq_len"]) for r in rows))
    for precision, seq_len in keys:
        cells = []
        for preset in presets:
            r = next((r for r in rows if (r["preset"], r["precision"], r["seq_len"]) == (preset, precision, seq_len)),
                     None)
            cells += [f"{r['peak_train_mb']:,.0f}", f"{r['saved_mb']:,.0f}"] if r else ["–", "–"]
        n_patches = next(r["n_patches"] for r in rows if r["seq_len"] == seq_len)
        lines.append(f"| {precision} | {seq_len} ({n_patches}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def slopes(rows: list[dict]) -> str:
    """Saved-for-backward MB per extra patch between the shortest and longest input, per preset and precision."""
    lines = []
    for key in dict.fromkeys((r["preset"], r["precision"]) for r in rows):
        runs = sorted((r for r in rows if (r["preset"], r["precision"]) == key), key=lambda r: r["n_patches"])
        if len(runs) > 1 and runs[-1]["n_patches"] > runs[0]["n_patches"]:
            slope = (runs[-1]["saved_mb"] - runs[0]["saved_mb"]) / (runs[-1]["n_patches"] - runs[0]["n_patches"])
            lines.append(f"{key[0]} {key[1]}: {slope:.2f} saved MB per patch (batch {runs[0]['batch']})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[96, 336, 512, 720])
    parser.add_argument("--presets", nargs="+", default=["reference", "gpt4ts"])
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--worker", nargs=3, metavar=("PRESET", "SEQ_LEN", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        preset, seq_len, precision = args.worker
        print(json.dumps(measure(preset, int(seq_len), precision, args.batch, args.horizon, args.steps)))
        return
    rows = []
    for precision in args.precisions:
        for seq_len in args.seq_lens:
            for preset in args.presets:
                cmd = [sys.executable, __file__, "--worker", preset, str(seq_len), precision,
                       "--batch", str(args.batch), "--horizon", str(args.horizon), "--steps", str(args.steps)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    print(slopes(rows))


if __name__ == "__main__":
    main()
