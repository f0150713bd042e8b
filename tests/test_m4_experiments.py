"""Every short-term and series zero-shot experiment composes and builds with the expected sample counts."""

from __future__ import annotations

import pytest

from one4all.config import compose_config
from one4all.train import build


@pytest.mark.parametrize("experiment,seq_len,counts", [
    ("short_term/m4_hourly", 96, (4140, 414, 414)),
    ("short_term/m3_yearly", 12, (6450, 645, 645)),
    ("short_term/m3_quarterly", 16, (7560, 756, 756)),
    ("short_term/m3_monthly", 36, (14280, 1428, 1428)),
    ("short_term/m3_other", 16, (1740, 174, 174)),
    ("zero_shot/m3_m4_other", 16, (1740, 174, 414)),
    ("zero_shot/m4_m3_other", 96, (4140, 414, 174)),
])
def test_series_experiments_build(experiment, seq_len, counts, tiny_overrides):
    cfg, _ = compose_config([f"experiment={experiment}", *tiny_overrides])
    run = build(cfg)
    sizes = run.datamodule.sizes()
    assert (sizes["n_train_samples"], sizes["n_val_samples"], sizes["n_test_samples"]) == counts
    assert run.io.seq_len == seq_len and run.io.n_channels == 1
    batch = run.datamodule.datasets["test"].__getitems__([0])
    assert batch["x"].shape == (1, seq_len, 1)


def test_paper_compat_validates_on_test_and_scores_every_series(tiny_overrides):
    cfg, _ = compose_config(["experiment=short_term/m4_hourly", *tiny_overrides, "paper_compat=true"])
    run = build(cfg)
    assert run.loaded.validation == "test split (paper_compat)"
    # TSLib scores all 414 series at once: no test-time drop_last for M4 (eval batch 128 would drop 30)
    assert run.datamodule.sizes()["n_test_samples"] == 414
    assert sum(len(b["x"]) for b in run.datamodule.test_dataloader()) == 414
