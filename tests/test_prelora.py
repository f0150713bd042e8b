"""PreLoRA: convergence test, rank rule, the switch itself, artifact round trip, end-to-end run."""

from __future__ import annotations

import json

import pytest
import torch

from one4all.adapters.prelora import PreLoRASpec, Window, assign_ranks, cap_ranks, converged, rank_ladder
from one4all.artifact import load_artifact, save_artifact
from one4all.cli import main
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2, TINY_OVERRIDES

IO = IOSpec(seq_len=96, n_channels=1, horizon=24)
# Tiny GPT-2 (n_embd 32, 2 blocks, 128 positions), L=96 -> 12 patches of 16 (stride 8, end padding).
LAYERNORMS = 2 * 2 * 2 * 32 + 2 * 32  # ln_1, ln_2 per block + ln_f, weight and bias: 320
WPE, IN, OUT = (128, 32), (16, 32), (32 * 12, 24)  # (fan_in, fan_out) of wpe, in_layer, out_layer
GPT4TS = LAYERNORMS + 128 * 32 + (16 * 32 + 32) + (32 * 12 * 24 + 24)  # 14,200
# Runs through the CLI use debug=tiny's GPT-2, which has 256 positions: wpe is 256 x 32 there.
RUN_WPE = (256, 32)
RUN_GPT4TS = GPT4TS + (RUN_WPE[0] - WPE[0]) * 32  # 18,296


def _window(loss: float, w: float, g: dict[str, float] | None = None) -> Window:
    return Window(loss, {"a": w, "b": w}, g or {"a": 1.0, "b": 1.0})


def test_converged_needs_small_loss_and_weight_norm_changes():
    families = {"p": ["a", "b"]}
    steady = [_window(1.0, 10.0), _window(0.95, 10.2), _window(0.9, 10.4)]  # loss -5%, -5.3%; norms +2%, +1.96%
    assert converged(steady, families, loss_threshold=10.0, weight_threshold=5.0)
    assert not converged(steady, families, loss_threshold=5.0, weight_threshold=5.0)  # 5.26% > 5
    assert not converged(steady, families, loss_threshold=10.0, weight_threshold=1.97)  # 2% >= 1.97
    assert not converged(steady[:1], families, 10.0, 5.0)


def test_rank_rule_follows_gradient_norm_change():
    assert rank_ladder(4, 32) == [4, 8, 16, 32]
    previous = Window(1.0, {}, {"a": 1.0, "b": 1.0, "c": 1.0})
    last = Window(1.0, {}, {"a": 1.0, "b": 1.5, "c": 2.0})  # changes 0%, 50%, 100% -> v 0, 0.5, 1
    # index = ceil(v * 4) - 1 (0 when v = 0): 0, 1, 3
    assert assign_ranks(previous, last, 4, 32) == {"a": 4, "b": 8, "c": 32}
    single = Window(1.0, {}, {"a": 3.0})  # one module: min-max is degenerate -> lowest rank
    assert assign_ranks(Window(1.0, {}, {"a": 1.0}), single, 4, 32) == {"a": 4}


def test_ranks_are_capped_where_lora_would_not_be_smaller():
    shapes = {"out_layer": (24, 384), "in_layer": (32, 16), "gpt2.wpe": (128, 32), "tiny": (2, 2)}
    ranks = {"out_layer": 32, "in_layer": 32, "gpt2.wpe": 8, "tiny": 4}
    # r * (rows + cols) < rows * cols: out_layer r < 22.6 -> 16; in_layer r < 10.7 -> 8; wpe 8 stays;
    # a 2x2 weight never pays (4 * 4 >= 4): it keeps training in full.
    assert cap_ranks(ranks, shapes, 4, 32) == {"out_layer": 16, "in_layer": 8, "gpt2.wpe": 8}


def _gpt4ts() -> One4All:
    return One4All(IO, BackboneSpec(init="random", n_layers=2, config=TINY_GPT2), PreLoRASpec())


def test_switch_keeps_the_function_and_drops_trainable_params_to_the_hand_count():
    torch.manual_seed(0)
    net = _gpt4ts().eval()
    assert count_parameters(net)["trainable_params"] == GPT4TS == 14200
    x = torch.randn(3, 96, 1)
    before = net(x)
    ranks = {"gpt2.wpe": 8, "in_layer": 4, "out_layer": 16}
    net.adapter.switch(net, ranks)
    assert torch.equal(net(x), before)  # B = 0: the switch does not change the network
    expected = LAYERNORMS + 8 * sum(WPE) + 4 * sum(IN) + 16 * sum(OUT)  # 320 + 1280 + 192 + 6528
    assert count_parameters(net)["trainable_params"] == expected == 8320
    assert net.get_submodule("out_layer").lora_A["default"].weight.shape == (16, 32 * 12)
    assert net.stored_frozen() == {"gpt2.wpe.base_layer.weight", "in_layer.base_layer.weight",
                                               "in_layer.base_layer.bias", "out_layer.base_layer.weight",
                                               "out_layer.base_layer.bias"}


def test_switched_network_round_trips_through_the_artifact(tmp_path):
    torch.manual_seed(0)
    net = _gpt4ts()
    with torch.no_grad():  # stand-in for full training: the weights leave their seeded init
        for p in net.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    ranks = {"gpt2.wpe": 4, "in_layer": 4, "out_layer": 8}
    net.adapter.switch(net, ranks)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.add_(torch.randn_like(p) * 0.1)
    config = {"_target_": "one4all.models.one4all.One4All",
              "backbone": {"_target_": "one4all.models.backbones.gpt2.GPT2Spec", "init": "random", "n_layers": 2,
                           "config": TINY_GPT2},
              "adapter": {"_target_": "one4all.adapters.prelora.PreLoRASpec", "switched": ranks}}
    save_artifact(tmp_path / "model", net, config, IO, extra={})
    loaded, _ = load_artifact(tmp_path / "model")
    x = torch.randn(2, 96, 1)
    assert torch.equal(loaded(x), net.eval()(x))
    assert torch.equal(loaded.out_layer.base_layer.weight, net.out_layer.base_layer.weight)
    assert count_parameters(loaded) == count_parameters(net)


RUN = ["experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24", "trainer.val_check_interval=2",
       "trainer.limit_val_batches=2", "data.batch_size=64", "data.eval_batch_size=1000", "adapter=prelora",
       # A synthetic converging run: windows of 2 steps, thresholds every window passes, one rank.
       "callbacks.prelora.window_steps=2", "callbacks.prelora.loss_threshold=1e9",
       "callbacks.prelora.weight_threshold=1e9", "callbacks.prelora.low_rank=4", "callbacks.prelora.high_rank=4"]


@pytest.fixture(scope="module")
def prelora_run(tmp_path_factory, data_root):
    run_dir = tmp_path_factory.mktemp("prelora") / "run"
    assert main(["train", *RUN, *TINY_OVERRIDES, "trainer.max_steps=10", f"data.root={data_root}",
                 f"hydra.run.dir={run_dir}"]) == 0
    return run_dir


def test_prelora_run_switches_and_reports(prelora_run):
    metrics = json.loads((prelora_run / "metrics.json").read_text())
    report = metrics["prelora"]
    # 3 windows of 2 steps: the test first passes after step 6.
    assert report["switched"] and report["switch_step"] == 6
    assert report["ranks"] == {"gpt2.wpe": 4, "out_layer": 4, "in_layer": 4}
    after = LAYERNORMS + 4 * (sum(RUN_WPE) + sum(IN) + sum(OUT))  # 320 + 1152 + 192 + 1632
    assert report["before"]["trainable_params"] == RUN_GPT4TS
    assert report["after"]["trainable_params"] == after == metrics["efficiency"]["trainable_params"] == 3296
    assert report["before"]["batches"] == 6 and report["after"]["batches"] == 4
    assert report["after"]["peak_mb"] > 0
    saved = json.loads((prelora_run / "model" / "model.json").read_text())
    assert saved["network"]["adapter"]["switched"] == report["ranks"]
    loaded, _ = load_artifact(prelora_run / "model")
    assert count_parameters(loaded)["trainable_params"] == after


def test_prelora_run_resumes_after_the_switch(prelora_run, data_root, tmp_path):
    import shutil

    run_dir = tmp_path / "resumed"
    shutil.copytree(prelora_run, run_dir)
    assert main(["train", *RUN, *TINY_OVERRIDES, "trainer.max_steps=12", "ckpt_path=last",
                 f"data.root={data_root}", f"hydra.run.dir={run_dir}"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["global_step"] == 12
    assert metrics["prelora"]["switch_step"] == 6
    assert metrics["efficiency"]["trainable_params"] == 3296


def test_prelora_that_never_switches_still_finishes(data_root, tmp_path):
    run_dir = tmp_path / "short"
    assert main(["train", *RUN, *TINY_OVERRIDES, "trainer.max_steps=3", f"data.root={data_root}",
                 f"hydra.run.dir={run_dir}"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["prelora"]["switched"] is False and metrics["prelora"]["switch_step"] is None
    assert metrics["efficiency"]["trainable_params"] == RUN_GPT4TS


def test_prelora_under_ddp_is_refused_before_the_run_directory_exists(data_root, tmp_path, capsys):
    run_dir = tmp_path / "never"
    code = main(["train", *RUN, *TINY_OVERRIDES, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                 "trainer.max_steps=1", f"data.root={data_root}", f"hydra.run.dir={run_dir}"])
    assert code == 2 and not run_dir.exists()
    assert "drop trainer=ddp" in capsys.readouterr().err
