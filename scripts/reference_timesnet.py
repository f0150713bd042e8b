"""Train Time-Series-Library's own TimesNet on ETTh1 (L=96 -> H=96) in TSLib's own loop for one seed, then
test its best checkpoint twice: in TSLib's test loop and in one4all's test pipeline.

    python scripts/reference_timesnet.py --tslib TSLIB --data-root ../shared/data --seed 2021 \\
        --out outputs/reference/timesnet/s2021

TSLIB is a checkout of github.com/thuml/Time-Series-Library (the numbers in docs/benchmarks.md used
commit 4e938a1767106324dd753b2a44832bf870a0252e). The run is the first block of TSLib's
`scripts/long_term_forecast/ETT_script/TimesNet_ETTh1.sh` with `run.py`'s defaults (10 epochs, patience 3,
Adam 1e-4, batch 32, `type1`, `timeF` marks), with changes that leave the training as it is:

- the seed: `run.py` hard-codes `fix_seed = 2021`; the script runs `run.py`'s text with that number
  replaced by `--seed`, nothing else of it;
- `--num_workers 0 --no_use_gpu`: CPU, and no loader workers (the shuffle is drawn in the main process
  either way);
- `Inception_Block_V1.forward` (the mean of six 'same' convolutions) runs as one convolution with the
  mean of the zero-padded kernels: the same function of the same parameters (same init, same
  gradients up to float rounding), about 3x faster on CPU. one4all's TimesNet does the same.

Modules TSLib imports at load time only for other datasets (`sktime`, `datasets`, `patoolib`) are
replaced by stubs that raise when called, if they are not installed. Nothing of TSLib's is copied into
this repository; its code runs from the checkout, its outputs (checkpoints, results) go under OUT.

Writes OUT/result.json: the seed, TSLib's commit, TSLib's own test MSE/MAE (`test()`'s metrics.npy),
and the MSE/MAE of the same weights through one4all's data pipeline and TimesNet.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from make_parity_fixtures import stack_inception_biases, tslib_timesnet_name

SCRIPT_ARGS = [
    "--task_name", "long_term_forecast", "--is_training", "1", "--data_path", "ETTh1.csv", "--model", "TimesNet",
    "--data", "ETTh1", "--features", "M", "--seq_len", "96", "--label_len", "48", "--pred_len", "96",
    "--e_layers", "2", "--d_layers", "1", "--factor", "3", "--enc_in", "7", "--dec_in", "7", "--c_out", "7",
    "--d_model", "16", "--d_ff", "32", "--des", "Exp", "--itr", "1", "--top_k", "5",
    "--num_workers", "0", "--no_use_gpu",
]
# Imported at module level by TSLib's data code for datasets this run does not read.
OPTIONAL_MODULES = {"sktime": None, "sktime.datasets": "load_from_tsfile_to_dataframe", "datasets": "load_dataset",
                    "patoolib": None}


def stub_missing_modules() -> None:
    """Stand-ins for TSLib's optional imports that are not installed; calling them raises."""
    installed = {name.split(".")[0]: importlib.util.find_spec(name.split(".")[0]) is not None
                 for name in OPTIONAL_MODULES}
    for name, function in OPTIONAL_MODULES.items():
        if installed[name.split(".")[0]]:
            continue
        module = types.ModuleType(name)
        if function:
            def unavailable(*_args, _name=f"{name}.{function}", **_kwargs):
                raise RuntimeError(f"{_name} is not installed; this run does not need it")
            setattr(module, function, unavailable)
        sys.modules[name] = module


def merged_inception_forward(self, x: torch.Tensor) -> torch.Tensor:
    """TSLib's Inception_Block_V1 output as one convolution (see the module docstring)."""
    reach = self.num_kernels - 1
    kernel = torch.stack([F.pad(conv.weight, [reach - i] * 4) for i, conv in enumerate(self.kernels)]).mean(0)
    bias = torch.stack([conv.bias for conv in self.kernels]).mean(0)
    return F.conv2d(x, kernel, bias, padding=reach)


def run_tslib(checkout: Path, data_root: Path, seed: int, out: Path, run_args: list[str]) -> Path:
    """Run TSLib's run.py with the seed replaced; returns the best checkpoint."""
    source = (checkout / "run.py").read_text()
    if source.count("fix_seed = 2021") != 1:
        raise SystemExit(f"{checkout}/run.py does not set `fix_seed = 2021` once; use commit 4e938a1")
    # TSLib finds its models by listing ./models and writes results under ./: run it from OUT.
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "models").exists():
        (out / "models").symlink_to(checkout / "models")
    os.chdir(out)
    sys.path.insert(0, str(checkout))
    stub_missing_modules()
    importlib.import_module("layers.Conv_Blocks").Inception_Block_V1.forward = merged_inception_forward
    sys.argv = ["run.py", *SCRIPT_ARGS, "--root_path", f"{data_root / 'ETTh1'}/", "--model_id", f"ETTh1_96_96_s{seed}",
                "--checkpoints", f"{out / 'checkpoints'}/", *run_args]
    code = compile(source.replace("fix_seed = 2021", f"fix_seed = {seed}"), str(checkout / "run.py"), "exec")
    # TSLib's own entry point, from the checkout.
    exec(code, {"__name__": "__main__", "__file__": str(checkout / "run.py")})
    checkpoints = sorted(out.glob("checkpoints/*/checkpoint.pth"))
    if len(checkpoints) != 1:
        raise SystemExit(f"expected one checkpoint under {out}/checkpoints, found {len(checkpoints)}")
    return checkpoints[0]


def tslib_to_one4all(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TSLib's TimesNet state dict under one4all's parameter names (the parity fixtures' mapping)."""
    renamed = {ours: value for name, value in state.items() if (ours := tslib_timesnet_name(name)) is not None}
    return stack_inception_biases(renamed)


def one4all_test(checkpoint: Path, data_root: Path) -> dict[str, float]:
    """Test MSE/MAE of TSLib's trained weights through one4all's data pipeline and TimesNet."""
    from one4all.config import compose_config
    from one4all.train import build

    cfg, _ = compose_config(["experiment=long_term/etth1_96_timesnet", f"data.root={data_root}"])
    built = build(cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    built.network.load_state_dict(tslib_to_one4all(state), strict=True)
    network = built.network.eval()
    built.datamodule.setup("test")
    squared = absolute = count = 0.0
    with torch.no_grad():
        for batch in built.datamodule.test_dataloader():
            error = network(batch["x"], marks=batch.get("x_mark")) - batch["y"]
            squared += error.square().sum().item()
            absolute += error.abs().sum().item()
            count += error.numel()
    return {"mse": squared / count, "mae": absolute / count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tslib", type=Path, required=True, help="checkout of thuml/Time-Series-Library")
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding ETTh1/ETTh1.csv")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="skip training: test this TSLib checkpoint only")
    parser.add_argument("run_args", nargs="*", help="more run.py arguments after `--` (e.g. -- --train_epochs 1)")
    args = parser.parse_args()
    checkout, data_root, out = args.tslib.resolve(), args.data_root.resolve(), args.out.resolve()
    if not (checkout / "run.py").is_file():
        parser.error(f"--tslib {args.tslib}: no run.py there; pass a Time-Series-Library checkout")
    if not (data_root / "ETTh1" / "ETTh1.csv").is_file():
        parser.error(f"--data-root {args.data_root}: no ETTh1/ETTh1.csv there; pass the folder that holds ETTh1/")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file; pass a TSLib checkpoint.pth")
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result: dict = {"seed": args.seed, "tslib_commit": commit or "unknown"}
    if args.checkpoint is None:
        checkpoint = run_tslib(checkout, data_root, args.seed, out, args.run_args)
        mae, mse = np.load(next(out.glob("results/*/metrics.npy")))[:2]
        result["tslib_test"] = {"mse": float(mse), "mae": float(mae)}
    else:
        checkpoint = args.checkpoint.resolve()
    result["one4all_test_same_weights"] = one4all_test(checkpoint, data_root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
