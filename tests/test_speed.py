"""Speed work: analytic FLOP counts, the gradient-free frozen front, backbone feature caching,
and the streamlined GPT-2 (same outputs as transformers' own)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from one4all.adapters import LoRASpec
from one4all.contract import IOSpec
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec, load_backbone
from one4all.models.baselines.patchtst import PatchTST
from one4all.models.one4all import One4All
from scripts.roofline import network_flops, transformer_macs
from tests.conftest import TINY_GPT2

IO = IOSpec(64, 1, horizon=12)  # patches 16/8 -> (64 - 16) // 8 + 2 = 8 tokens
TINY = BackboneSpec(init="random", n_layers=2, config=TINY_GPT2)


def tiny(preset: str = "reference", **kwargs) -> One4All:
    torch.manual_seed(0)
    return One4All(IO, TINY, LoRASpec(preset=preset, **kwargs.pop("adapter", {})), **kwargs)


def test_transformer_macs_by_hand():
    # d=32, f=128, T=8, 2 layers: projections 2 * 8 * (4*32*32 + 2*32*128) = 2 * 8 * 12,288;
    # attention 2 * 2 * 8 * 8 * 32.
    assert transformer_macs(8, 32, 128, 2) == {"projections": 196_608, "attention": 8_192}


def test_gpt2_flops_depend_on_what_trains():
    forward = 2 * (196_608 + 8_192)
    reference = network_flops(tiny("reference"))
    assert reference.forward == forward == 409_600
    # wpe LoRA sits below GPT-2: dX through every projection (1x) and attention (2x), no dW.
    assert reference.train == forward + 2 * (196_608 + 2 * 8_192) == 835_584
    assert network_flops(tiny("gpt4ts")).train == 835_584  # LayerNorm/wpe/embedding weights: no GEMM dW
    probe = network_flops(tiny("linear_probe"))
    assert probe.train == probe.forward == forward
    full = network_flops(tiny("linear_probe", adapter={"train_full": ["c_attn", "attn_proj", "mlp_fc", "mlp_proj"]}))
    assert full.train == 835_584 + 2 * 196_608


def test_gpt2_small_etth1_matches_design():
    net = One4All(IOSpec(336, 1, horizon=96), BackboneSpec(init="random"), LoRASpec())
    count = network_flops(net)
    # DESIGN §6: ~3.6 GFLOP forward per ETTh1 sample through 6 blocks.
    assert count.forward == 2 * 6 * 42 * (12 * 768**2 + 2 * 42 * 768) == 3_599_769_600


def test_patchtst_flops_by_hand():
    net = PatchTST(IO, d_model=16, n_heads=4, d_ff=32, n_layers=1)
    # projections 8 * (4*256 + 2*16*32) = 16,384; attention 2*8*8*16 = 2,048; embedding 8*16*16 = 2,048;
    # head (16*8) * 12 = 1,536.
    count = network_flops(net)
    assert count.forward == 2 * (16_384 + 2_048 + 2_048 + 1_536) == 44_032
    assert count.train == count.forward + 2 * (2 * (16_384 + 2_048 + 1_536) - 2_048 + 2 * 2_048) == 128_000


def test_streamlined_gpt2_equals_transformers():
    # sdpa: bitwise equal. (With eager attention the unused key/value cache makes keys contiguous,
    # which changes matmul rounding in the last bits.)
    spec = {"init": "random", "n_layers": 2, "config": TINY_GPT2, "attn_implementation": "sdpa"}
    fast = load_backbone(BackboneSpec(**spec, fused_gelu=False)).model.eval()
    plain = BackboneSpec(**spec).random_model().eval()
    x = torch.randn(3, 8, 32)
    for autocast in (False, True):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            expected = plain(inputs_embeds=x).last_hidden_state
            assert torch.equal(fast(inputs_embeds=x).last_hidden_state, expected)
            assert torch.equal(fast(inputs_embeds=x).last_hidden_state, expected)  # cached casts
    with torch.no_grad():
        fast.h[0].attn.c_attn.weight.mul_(2)  # a changed weight invalidates its cast
        plain.h[0].attn.c_attn.weight.mul_(2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(fast(inputs_embeds=x).last_hidden_state, plain(inputs_embeds=x).last_hidden_state)
    fused = load_backbone(BackboneSpec(**spec)).model.eval()
    plain = BackboneSpec(**spec).random_model().eval()
    with torch.no_grad():  # the fused GELU: same function, other rounding
        expected = plain(inputs_embeds=x).last_hidden_state
        assert torch.allclose(fused(inputs_embeds=x).last_hidden_state, expected, atol=1e-5)


def _head_step(net: One4All, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(1)  # same dropout draws in both paths
    loss = F.mse_loss(net(x), y)
    loss.backward()
    grads = [p.grad.clone() for p in net.parameters() if p.requires_grad]
    net.zero_grad(set_to_none=True)
    return loss.detach(), grads


def test_frozen_front_runs_without_grad_and_changes_nothing(monkeypatch):
    net = tiny("linear_probe").train()
    x, y = torch.randn(4, 64, 1), torch.randn(4, 12, 1)
    seen = []
    net.gpt2.register_forward_hook(lambda *args: seen.append(torch.is_grad_enabled()))
    fast_loss, fast_grads = _head_step(net, x, y)
    monkeypatch.setattr(One4All, "front_trainable", lambda self: ["forced plain path"])
    plain_loss, plain_grads = _head_step(net, x, y)
    assert seen == [False, True]
    assert torch.equal(fast_loss, plain_loss)
    assert len(fast_grads) == 2 and all(torch.equal(a, b) for a, b in zip(fast_grads, plain_grads, strict=True))
    # With the wpe adapter the gradient must cross GPT-2.
    seen.clear()
    reference = tiny("reference")
    reference.gpt2.register_forward_hook(lambda *args: seen.append(torch.is_grad_enabled()))
    reference(x)
    assert seen == [True]


def test_cached_features_give_the_eval_mode_loss():
    cached = tiny("linear_probe", cache_backbone_features=True).train()
    plain = tiny("linear_probe").train()
    plain.gpt2.eval()
    plain.in_layer.eval()
    assert not cached.gpt2.training and cached.out_layer.training
    x, y = torch.randn(5, 64, 1), torch.randn(5, 12, 1)
    first, _ = _head_step(cached, x, y)
    assert (len(cached.feature_cache), cached.feature_cache.misses) == (5, 5)
    second, grads = _head_step(cached, x, y)
    expected, expected_grads = _head_step(plain, x, y)
    assert cached.feature_cache.hits == 5
    assert torch.equal(first, second) and torch.equal(second, expected)
    assert all(torch.equal(a, b) for a, b in zip(grads, expected_grads, strict=True))
    # Another precision is another entry, not a stale hit.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cached(x)
    assert len(cached.feature_cache) == 10
    assert cached.feature_cache.nbytes == 10 * 8 * 32 * 4


def test_features_cached_under_inference_mode_train_later():
    net = tiny("linear_probe", cache_backbone_features=True)
    x, y = torch.randn(2, 64, 1), torch.randn(2, 12, 1)
    with torch.inference_mode():
        net.eval()(x)
    loss, grads = _head_step(net.train(), x, y)
    assert net.feature_cache.hits == 2 and loss > 0 and grads[0].abs().sum() > 0


def test_cache_budget_is_respected():
    net = tiny("linear_probe", cache_backbone_features=True, feature_cache_mb=2 * 8 * 32 * 4 / 2**20)
    x = torch.randn(3, 64, 1)
    expected = net(x)
    assert len(net.feature_cache) == 2
    assert torch.equal(net(x), expected)


@pytest.mark.parametrize("preset", ["reference", "gpt4ts", "paper"])
def test_cache_refused_when_an_adapter_sits_before_the_head(preset):
    with pytest.raises(UserError, match="cache_backbone_features=true needs a frozen GPT-2"):
        tiny(preset, cache_backbone_features=True)


def test_cache_allowed_with_lora_on_the_head_only():
    net = tiny("reference", adapter={"lora_targets": ["head"]}, cache_backbone_features=True)
    assert net.front_trainable() == []


def test_eager_attention_equals_sdpa():
    x = torch.randn(3, 8, 32)
    out = {}
    for impl in ("eager", "sdpa"):
        model = load_backbone(BackboneSpec(init="random", n_layers=2, config=TINY_GPT2, attn_implementation=impl))
        with torch.no_grad():
            out[impl] = model.model.eval()(inputs_embeds=x).last_hidden_state
    assert torch.allclose(out["eager"], out["sdpa"], atol=1e-5)
