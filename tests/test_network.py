"""The One-for-All network: shapes, patching, trainable counts against DESIGN.md §3."""

from __future__ import annotations

import pytest
import torch

from one4all.adapters import LoRASpec
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec
from one4all.models.encoder import InstanceNorm, Patcher
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

GPT2_SMALL_RANDOM = BackboneSpec(init="random")


def build(preset: str = "reference", horizon: int = 96, seq_len: int = 336, **adapter) -> One4All:
    return One4All(IOSpec(seq_len, 7, horizon=horizon), GPT2_SMALL_RANDOM, LoRASpec(preset=preset, **adapter))


@pytest.mark.parametrize(("horizon", "expected"), [(96, 546_304), (720, 556_288)])
def test_reference_trainable_params_match_paper(horizon, expected):
    net = build("reference", horizon)
    assert net.n_patches == 42
    # r (1024 + 768) for the wpe adapter + r (768 N + H) for the head adapter
    assert expected == 16 * (1024 + 768) + 16 * (768 * 42 + horizon)
    assert count_parameters(net)["trainable_params"] == expected


def test_gpt4ts_trainable_params():
    assert count_parameters(build("gpt4ts"))["trainable_params"] == 3_916_128


def test_reference_trains_only_lora_and_scale_is_four():
    net = build("reference")
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert net.out_layer.scaling["default"] == pytest.approx(16 / 16**0.5)
    assert net.gpt2.wpe.scaling["default"] == pytest.approx(4.0)
    # peft Gaussian init: Linear A ~ N(0, 1/r^2), B = 0; Embedding A = 0, B ~ N(0, 1).
    assert torch.count_nonzero(net.out_layer.lora_B["default"].weight) == 0
    assert net.out_layer.lora_A["default"].weight.std().item() == pytest.approx(1 / 16, rel=0.05)
    assert torch.count_nonzero(net.gpt2.wpe.lora_embedding_A["default"]) == 0
    assert net.gpt2.wpe.lora_embedding_B["default"].std().item() == pytest.approx(1.0, rel=0.1)


def test_paper_preset_trains_patch_embedding_with_alpha_one():
    net = build("paper", alpha=1.0)
    assert count_parameters(net)["trainable_params"] == 546_304 + 16 * 768 + 768
    assert net.out_layer.scaling["default"] == pytest.approx(0.25)


def test_lora_scaling_option():
    net = build("reference", scaling="lora")
    assert net.out_layer.scaling["default"] == pytest.approx(1.0)


def test_unknown_part_is_a_clear_error():
    with pytest.raises(UserError, match="does not exist"):
        build("reference", lora_targets=["wte"])


def test_patching_matches_formula_and_replication_pad():
    patcher = Patcher(16, 8)
    series = torch.arange(336, dtype=torch.float32).unsqueeze(0)
    patches = patcher(series)
    assert patches.shape == (1, (336 - 16) // 8 + 2, 16) == (1, 42, 16)
    assert patches[0, 0].tolist() == list(range(16))
    # the last patch runs into the padding, which repeats the final value
    assert patches[0, -1].tolist() == list(range(328, 336)) + [335.0] * 8


def test_instance_norm_uses_biased_variance_and_inverts():
    x = torch.randn(3, 50, 2) * 4 + 10
    z, mean, std = InstanceNorm().normalise(x)
    assert torch.allclose(std, torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + 1e-5))
    assert torch.allclose(InstanceNorm.denormalise(z, mean, std), x, atol=1e-5)


def test_forward_shape_and_channel_independence():
    torch.manual_seed(0)
    net = One4All(IOSpec(64, 3, horizon=12), BackboneSpec(init="random", n_layers=2, config=TINY_GPT2),
                  LoRASpec(preset="gpt4ts")).eval()
    x = torch.randn(4, 64, 3)
    out = net(x)
    assert out.shape == (4, 12, 3)
    # channel c of a joint batch equals channel c fed alone: channels never mix
    alone = net(x[:, :, 1:2])
    assert torch.allclose(out[:, :, 1:2], alone, atol=1e-5)


def test_too_many_patches_is_a_clear_error():
    with pytest.raises(UserError, match="positions"):
        One4All(IOSpec(2048, 1, horizon=4), BackboneSpec(init="random", n_layers=1, config=TINY_GPT2))
