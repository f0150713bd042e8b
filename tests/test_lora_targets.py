"""rsLoRA vs LoRA over ranks 2..1024 and every target part, GPT-2 Conv1D orientation included."""

from __future__ import annotations

import pytest
import torch

from one4all.adapters import LoRASpec
from one4all.config import compose_config
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

ALL_PARTS = ["wpe", "head", "patch_embedding", "c_attn", "attn_proj", "mlp_fc", "mlp_proj"]


def test_lora_on_conv1d_projections_adds_scale_times_ba_in_conv1d_orientation():
    spec = LoRASpec(lora_targets=ALL_PARTS, rank=4, dropout=0.0)
    net = One4All(IOSpec(64, 2, horizon=8), BackboneSpec(init="random", n_layers=2, config=TINY_GPT2), spec)
    x = torch.randn(3, 5, 32)
    for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc"):
        layer = net.gpt2.h[1].get_submodule(name)
        torch.nn.init.normal_(layer.lora_B["default"].weight)
        # Conv1D stores W as [in, out]: the LoRA update B A ([out, in]) enters transposed.
        delta = layer.scaling["default"] * (layer.lora_B["default"].weight @ layer.lora_A["default"].weight).T
        expected = x[..., : delta.shape[0]] @ (layer.base_layer.weight + delta) + layer.base_layer.bias
        assert torch.allclose(layer(x[..., : delta.shape[0]]), expected, atol=1e-5)
    fc = net.gpt2.h[1].mlp.c_proj
    assert fc.lora_A["default"].weight.shape == (4, 128) and fc.lora_B["default"].weight.shape == (32, 4)


@pytest.mark.parametrize("rank", [2, 1024])
def test_table_vii_trainable_params_at_extreme_ranks(rank):
    net = One4All(IOSpec(336, 7, horizon=96), BackboneSpec(init="random"), LoRASpec(rank=rank))
    # r (1024 + 768) for wpe + r (768 * 42 + 96) for the head: r = 1024 gives 34.96M (paper's Table VII: 35.20M
    # averaged over H = 96..720)
    assert count_parameters(net)["trainable_params"] == rank * (1024 + 768) + rank * (768 * 42 + 96)


@pytest.mark.parametrize(("name", "scale"), [("rslora", 16 / 64**0.5), ("lora", 16 / 64)])
def test_rslora_and_lora_configs(name, scale):
    cfg, _ = compose_config([f"adapter={name}", "adapter.rank=64"])
    assert cfg.adapter.scaling == name and cfg.adapter.alpha == 16.0
    net = One4All(IOSpec(64, 2, horizon=8), BackboneSpec(init="random", n_layers=2, config=TINY_GPT2),
                  LoRASpec(rank=64, scaling=name))
    assert net.out_layer.scaling["default"] == pytest.approx(scale)
    assert net.gpt2.wpe.scaling["default"] == pytest.approx(scale)
