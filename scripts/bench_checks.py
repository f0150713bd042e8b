"""What the untrusted-input checks cost: config validation before a run, and loading an artifact.

    python scripts/bench_checks.py [--repeats 5]

Config: `validation.check_config` on the composed default config of `one4all train` (imports
already paid). Artifact: the One-for-All network of the ETTh1 benchmark shape (L=336, H=96, 7
channels, random-init GPT-2 small, 6 blocks, rsLoRA r=16 on wpe + head) saved with
`artifact.save_artifact`, then `artifact.load_artifact` timed whole and its meta-device size check
(`models.spec.build` builds the network once on the meta device before building it for real) timed
alone. Prints a Markdown table of medians over `--repeats` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from one4all.adapters import LoRASpec
from one4all.artifact import load_artifact, save_artifact
from one4all.config import compose_config
from one4all.contract import IOSpec
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from one4all.models.spec import dry_build
from one4all.validation import check_config

IO = IOSpec(seq_len=336, n_channels=7, horizon=96)
SPEC = {"type": "one4all", "backbone": {"type": "gpt2", "init": "random"}, "adapter": {"type": "lora"}}


def median_s(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of `action` over `repeats` calls, after one untimed call."""
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg, _ = compose_config([])
    rows = [("check_config, default `one4all train` config", median_s(lambda: check_config(cfg), args.repeats))]
    with tempfile.TemporaryDirectory() as tmp:
        network = One4All(IO, BackboneSpec(init="random"), LoRASpec())
        artifact = save_artifact(Path(tmp) / "model", network, SPEC, IO, extra={})

        rows.append(("load_artifact, ETTh1 shape, GPT-2 small 6 blocks", median_s(lambda: load_artifact(artifact),
                                                                               args.repeats)))
        rows.append(("  of which the meta-device size check", median_s(lambda: dry_build(SPEC, IO), args.repeats)))
    print("| step | median s |\n|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
