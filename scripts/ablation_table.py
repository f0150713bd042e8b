"""The "does the language model help?" table: MiniLM pretrained vs random init vs the ablations,
and One-for-All's GPT-2 (random init) for reference, on each dataset and seed; mean ± std.

    OMP_NUM_THREADS=1 python scripts/ablation_table.py --out outputs/ablations_s --datasets etth1 \\
        --seeds 2021 2022 2023 -- data.root=../shared/data data.features=S trainer.max_steps=20 \\
        data.batch_size=32 data.eval_batch_size=256 trainer.limit_val_batches=0 trainer.enable_progress_bar=false

Overrides after `--` go to every run (the budget). Each run is one `one4all train` process writing
`<out>/<dataset>/<row>/seed<S>/`; `seed`, `model.init_seed` and `model.backbone.seed` are all S, so
every random part (data order, dropout, LoRA init, frozen random embedding/head, random backbone or
stand-in) is drawn anew per seed. A run whose metrics.json exists is read, not rerun: the same
command resumes an interrupted sweep. `<out>/results.md` and `<out>/results.json` get, per dataset
and row, test MSE/MAE mean ± sample std over the seeds, trainable params and train samples/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Row -> overrides. The same token embedding, head, adapter (the `reference` preset) and data in every row.
ROWS = {
    "minilm/pretrained": ["model/backbone=minilm", "ablation=pretrained"],
    "minilm/random_init": ["model/backbone=minilm", "ablation=random_init"],
    "minilm/no_lm": ["model/backbone=minilm", "ablation=no_lm"],
    "minilm/lm_to_attention": ["model/backbone=minilm", "ablation=lm_to_attention"],
    "minilm/lm_to_transformer": ["model/backbone=minilm", "ablation=lm_to_transformer"],
    "gpt2/random_init": ["model/backbone=gpt2", "ablation=random_init"],
}
# L=336 -> H=96 on each (experiment=long_term/etth1_96 sets the lengths).
DATASETS = {
    "etth1": ["experiment=long_term/etth1_96"],
    "exchange_rate": ["experiment=long_term/etth1_96", "data=csv", "data.path=exchange_rate/exchange_rate.csv",
                      "data.name=exchange_rate", "data.target=OT"],
}


def run_one(run_dir: Path, overrides: list[str]) -> dict | None:
    """metrics.json of `one4all train <overrides>` in `run_dir` (run now unless it exists); None if it failed."""
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        command = [sys.executable, "-m", "one4all.cli", "train", *overrides, f"hydra.run.dir={run_dir}"]
        print("$", " ".join(command[2:]), flush=True)
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            print(f"  failed (exit {done.returncode}): {(done.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
            return None
    return json.loads(metrics.read_text())


def summary(runs: list[dict]) -> dict:
    """Mean ± sample std of test MSE/MAE over seeds, trainable params, mean train samples/s."""
    out: dict = {"seeds": len(runs)}
    for key in ("test/mse", "test/mae"):
        values = [r[key] for r in runs]
        out[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "values": values}
    out["trainable_params"] = runs[0]["efficiency"]["trainable_params"]
    out["train_samples_per_s"] = statistics.mean(r["efficiency"]["train_samples_per_s"] for r in runs)
    out["backbone"] = runs[0]["backbone"]
    out["test_samples"] = runs[0]["data"]["n_test_samples"]
    return out


def markdown(results: dict[str, dict[str, dict]]) -> str:
    """One table: dataset, row, MSE and MAE mean ± std, trainable params, train samples/s, seeds."""
    lines = ["| dataset | row | test MSE | test MAE | trainable params | train samples/s | seeds |",
             "|---|---|---|---|---:|---:|---:|"]
    for dataset, rows in results.items():
        for row, s in rows.items():
            mse, mae = s["test/mse"], s["test/mae"]
            lines.append(f"| {dataset} | `{row}` | {mse['mean']:.4f} ± {mse['std']:.4f} | "
                         f"{mae['mean']:.4f} ± {mae['std']:.4f} | {s['trainable_params']:,} | "
                         f"{s['train_samples_per_s']:.1f} | {s['seeds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/ablations"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[2021, 2022, 2023])
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every run (the budget)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    results: dict[str, dict[str, dict]] = {}
    for dataset in args.datasets:
        for row in args.rows:
            runs = []
            for seed in args.seeds:
                seeded = [f"seed={seed}", f"model.init_seed={seed}", f"model.backbone.seed={seed}"]
                metrics = run_one(out / dataset / row / f"seed{seed}",
                                  [*DATASETS[dataset], *ROWS[row], *args.overrides, *seeded])
                if metrics is not None:
                    runs.append(metrics)
            if runs:
                results.setdefault(dataset, {})[row] = summary(runs)
                out.mkdir(parents=True, exist_ok=True)  # written after every row: a partial sweep is readable
                (out / "results.json").write_text(json.dumps(results, indent=2))
                (out / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
