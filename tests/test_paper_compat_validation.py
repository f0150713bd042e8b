"""`paper_compat=true` reproduces the authors' validation: GPT-2's dropout on, shuffled and dropped batches."""

from __future__ import annotations

import json

from one4all.cli import main
from one4all.config import compose_config
from one4all.efficiency import ThroughputMonitor
from one4all.train import build, make_trainer

SHORT = ["experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24", "data.batch_size=64",
         "data.eval_batch_size=500", "trainer.limit_val_batches=2"]


def validation_losses(tmp_path, overrides: list[str]) -> list[float]:
    """val/loss of two validations of the same (untrained) weights."""
    cfg, _ = compose_config([*SHORT, *overrides])
    built = build(cfg)
    trainer = make_trainer(cfg, tmp_path, ThroughputMonitor(), "32-true")
    return [trainer.validate(built.task, datamodule=built.datamodule, verbose=False)[0]["val/loss"]
            for _ in range(2)]


def test_paper_compat_validation_keeps_gpt2_dropout_on(tmp_path, tiny_overrides):
    honest = validation_losses(tmp_path / "honest", tiny_overrides)
    assert honest[0] == honest[1]
    authors = validation_losses(tmp_path / "authors", [*tiny_overrides, "paper_compat=true"])
    assert authors[0] != authors[1]  # same weights and batches: only the dropout draws differ


def test_paper_compat_validation_loader_shuffles_and_drops_the_last_batch(tiny_overrides):
    cfg, _ = compose_config([*SHORT, *tiny_overrides, "paper_compat=true", "data.eval_batch_size=512"])
    datamodule = build(cfg).datamodule
    n = len(datamodule.datasets["val"])
    channels = [int(c) for batch in datamodule.val_dataloader() for c in batch["channel"]]
    assert len(channels) == n - n % 512
    assert channels != sorted(channels)  # shuffled: in order, all of channel 0's windows would come first
    honest, _ = compose_config([*SHORT, *tiny_overrides, "data.eval_batch_size=512"])
    assert sum(len(b["x"]) for b in build(honest).datamodule.val_dataloader()) == n


def test_paper_compat_leaves_networks_the_authors_validate_in_eval_mode(tiny_overrides):
    cfg, _ = compose_config(["experiment=imputation/etth1_mask12", *tiny_overrides, "paper_compat=true"])
    network = build(cfg).network
    network.train()
    network.authors_validation_mode()
    assert not any(module.training for module in network.modules())


def test_metrics_json_records_the_precision_next_to_the_papers(tmp_path, tiny_overrides):
    run_dir = tmp_path / "run"
    assert main(["train", *SHORT, *tiny_overrides, "trainer.max_steps=1", f"hydra.run.dir={run_dir}"]) == 0
    efficiency = json.loads((run_dir / "metrics.json").read_text())["efficiency"]
    assert (efficiency["precision"], efficiency["paper_precision"]) == ("32-true", "32-true")
