"""One-for-All's Table VII in shape: rsLoRA rank against trainable params, artifact size, MSE/MAE.

    python scripts/rank_sweep.py --ranks 2 8 16 64 256 1024 [--compare-dir outputs/rank_sweep]

Params and artifact size do not depend on training: for each rank the script builds the network
(ETTh1 L=336 -> H=96, 7 channels, random-init GPT-2 small, 6 blocks) with `adapter=rslora` at that
rank and writes its artifact (trainable tensors + manifest) to a temporary folder. MSE/MAE come
from the `metrics.json` of each rank's run under `--compare-dir` (`<dir>/r<rank>/`, the layout of
`one4all compare experiment=compare/rank_sweep_etth1_96 hydra.run.dir=<dir>`, or single entries
run with `one4all train ... hydra.run.dir=<dir>/r<rank>`); ranks without one show "-".
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from one4all.adapters import LoRASpec
from one4all.artifact import save_artifact
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters, directory_bytes
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All

IO = IOSpec(seq_len=336, n_channels=7, horizon=96)


def cost(rank: int, scaling: str, alpha: float) -> tuple[int, int]:
    """(trainable params, artifact bytes) of One-for-All with rsLoRA/LoRA rank `rank` on wpe + head."""
    spec = LoRASpec(rank=rank, alpha=alpha, scaling=scaling)
    network = One4All(IO, BackboneSpec(init="random"), spec)
    config = {"_target_": "one4all.models.one4all.One4All",
              "backbone": {"_target_": "one4all.models.backbones.gpt2.GPT2Spec", "init": "random"},
              "adapter": {"_target_": "one4all.adapters.lora.LoRASpec", "rank": rank, "alpha": alpha,
                          "scaling": scaling}}
    with tempfile.TemporaryDirectory() as tmp:
        artifact = save_artifact(Path(tmp) / "model", network, config, IO, extra={})
        return count_parameters(network)["trainable_params"], directory_bytes(artifact)


def accuracy(compare_dir: Path | None, rank: int) -> tuple[str, str]:
    """(test MSE, test MAE) of rank `rank`'s finished run under `compare_dir`, else ("-", "-")."""
    path = compare_dir / f"r{rank}" / "metrics.json" if compare_dir else None
    if path is None or not path.is_file():
        return "-", "-"
    metrics = json.loads(path.read_text())
    return f"{metrics['test/mse']:.4f}", f"{metrics['test/mae']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 8, 16, 64, 256, 1024])
    parser.add_argument("--scaling", default="rslora", choices=["rslora", "lora"])
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--compare-dir", type=Path, default=None)
    args = parser.parse_args()
    print("| rank | trainable params (M) | artifact (MB) | test MSE | test MAE |")
    print("|---:|---:|---:|---:|---:|")
    for rank in args.ranks:
        params, size = cost(rank, args.scaling, args.alpha)
        mse, mae = accuracy(args.compare_dir, rank)
        print(f"| {rank} | {params / 1e6:.3f} | {size / 1e6:.2f} | {mse} | {mae} |")


if __name__ == "__main__":
    main()
