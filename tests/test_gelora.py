"""GeLoRA: ranks reach the right modules, calibration runs on train windows, the model reloads."""

from __future__ import annotations

import json
import re

import pytest
import torch

from one4all.artifact import load_artifact
from one4all.cli import main
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.errors import UserError
from one4all.lowrank.gelora import GeLoRASpec
from one4all.lowrank.twonn import gelora_ranks
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

TINY = BackboneSpec(init="random", n_layers=2, config=TINY_GPT2)
PROJECTIONS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def tiny(spec: GeLoRASpec, io: IOSpec | None = None) -> One4All:
    return One4All(io or IOSpec(64, 2, horizon=8), TINY, spec)


def test_rank_pattern_keys_are_the_networks_module_names():
    spec = GeLoRASpec(rank=4, block_ranks=[2, 3])
    net = tiny(spec)
    names = {name for name, _ in net.named_modules()}
    lora, _ = spec.resolved()
    modules = [m for part in lora for m in net.lora_parts()[part]]
    config = spec.lora_config(modules)
    keys = {re.sub(r"\\(.)", r"\1", key) for key in config.rank_pattern}
    assert keys == {f"gpt2.h.{i}.{p}" for i in range(2) for p in PROJECTIONS} and keys <= names
    for i, rank in enumerate([2, 3]):
        for p in PROJECTIONS:
            module = net.get_submodule(f"gpt2.h.{i}.{p}")
            assert module.r["default"] == rank
            # rsLoRA with alpha = 32 sqrt(r): the block scale is 32 at every rank
            assert module.scaling["default"] == pytest.approx(32.0)
    assert net.out_layer.r["default"] == 4 and net.out_layer.scaling["default"] == pytest.approx(16 / 2)
    # per block, n_embd=32: c_attn r(32+96) + attn.c_proj r(32+32) + c_fc r(32+128) + mlp.c_proj r(128+32)
    blocks = (2 + 3) * (128 + 64 + 160 + 160)
    assert count_parameters(net)["trainable_params"] == blocks + 4 * (128 + 32) + 4 * (32 * net.n_patches + 8)


def test_plain_lora_scaling_uses_alpha_32r():
    net = tiny(GeLoRASpec(rank=4, block_ranks=[5, 1], scaling="lora"))
    assert net.gpt2.h[0].mlp.c_fc.lora_alpha["default"] == 160
    assert net.gpt2.h[0].mlp.c_fc.scaling["default"] == pytest.approx(32.0)


def test_wrong_number_of_block_ranks_is_a_user_error():
    with pytest.raises(UserError, match="one rank per GPT-2 block"):
        tiny(GeLoRASpec(block_ranks=[2]))


def test_block_states_are_block_input_and_outputs():
    net = tiny(GeLoRASpec(block_ranks=[1, 1])).eval()
    x = torch.randn(3, 64, 1)
    states = net.block_states(x)
    assert len(states) == 3 and all(s.shape == (3, net.n_patches, 32) for s in states)
    tokens, _ = net.layout.encode(x, None)
    positions = net.gpt2.wpe(torch.arange(net.n_patches))
    assert torch.allclose(states[0], net.in_layer(tokens) + positions, atol=1e-6)
    # A block called on its own gets no causal mask from GPT2Model: pass it (additive, 4-D).
    causal = torch.full((net.n_patches, net.n_patches), float("-inf")).triu(1)[None, None]
    block_out = net.gpt2.h[1](states[1], attention_mask=causal)
    assert torch.allclose(states[2], block_out[0] if isinstance(block_out, tuple) else block_out, atol=1e-6)


def test_calibration_works_for_masked_reconstruction_inputs():
    spec = GeLoRASpec(windows=16, max_points=500)
    net = tiny(spec, IOSpec(32, 3, kind="reconstruct", masked=True))
    assert spec.needs_train_data() and not any(p.requires_grad for p in net.parameters())
    g = torch.Generator().manual_seed(0)
    train = [{"x": torch.randn(32, 3, generator=g), "mask": torch.ones(32, 3)} for _ in range(20)]
    net.calibrate(train)
    report = net.adapter_report
    assert len(report["id_profile"]) == 3 and report["block_ranks"] == gelora_ranks(report["id_profile"])
    assert net.gpt2.h[1].attn.c_attn.r["default"] == report["block_ranks"][1]
    assert any(p.requires_grad for p in net.parameters())


def test_feature_cache_with_gelora_is_refused_at_calibration_not_at_the_first_forward():
    net = One4All(IOSpec(32, 1, horizon=8), TINY, GeLoRASpec(windows=8, max_points=200),
                  cache_backbone_features=True)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(UserError, match="cache_backbone_features=true needs a frozen GPT-2"):
        net.calibrate([{"x": torch.randn(32, 1, generator=g)} for _ in range(10)])


def test_train_reports_profile_and_artifact_replays_ranks(tmp_path, tiny_overrides):
    run_dir = tmp_path / "gelora"
    code = main(["train", "experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24",
                 "trainer.max_steps=2", "trainer.limit_val_batches=1", "++trainer.limit_test_batches=1",
                 "adapter=gelora", "adapter.windows=64", "adapter.max_points=1000", *tiny_overrides,
                 f"hydra.run.dir={run_dir}"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    report = metrics["adapter"]
    assert report["method"] == "gelora" and report["calibration"]["split"] == "train"
    assert len(report["id_profile"]) == 3 and report["id_estimation_s"] > 0
    assert report["block_ranks"] == gelora_ranks(report["id_profile"])
    network, manifest = load_artifact(run_dir / "model")
    assert manifest["network"]["adapter"]["block_ranks"] == report["block_ranks"]
    assert network.gpt2.h[0].mlp.c_proj.r["default"] == report["block_ranks"][0]
    assert count_parameters(network)["trainable_params"] == metrics["efficiency"]["trainable_params"]
