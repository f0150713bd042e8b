"""VeLoRA-compressed LoRA inputs (adapter=lars): exact forward, exact or bounded gradients, less saved."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from one4all.adapters import AdapterSpec
from one4all.adapters.velora import SubTokenLoRAA
from one4all.contract import IOSpec
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

PROJECTIONS = ["c_attn", "attn_proj", "mlp_fc", "mlp_proj"]


def _pair(in_features: int, rank: int, groups: int) -> tuple[nn.Linear, SubTokenLoRAA]:
    torch.manual_seed(0)
    plain = nn.Linear(in_features, rank, bias=False)
    compressed = SubTokenLoRAA(in_features, rank, groups)
    compressed.weight.data.copy_(plain.weight.data)
    return plain, compressed


def _grads(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_(True)
    out = module(x)
    (out * upstream).sum().backward()
    return out.detach(), x.grad, module.weight.grad


def _saved_numbers(module: nn.Module, x: torch.Tensor) -> int:
    numbers = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: numbers.append(t.numel()) or t, lambda t: t):
        module(x.clone().requires_grad_(True))
    return sum(numbers)


def test_lossless_when_sub_tokens_are_single_features():
    # 12 groups of 12 features -> sub-tokens of size 1: v = +-1 and x_hat = x exactly.
    plain, compressed = _pair(12, 3, groups=12)
    x, upstream = torch.randn(4, 5, 12), torch.randn(4, 5, 3)
    for a, b in zip(_grads(plain, x, upstream), _grads(compressed, x, upstream)):
        assert torch.equal(a, b)


def test_forward_and_input_gradient_exact_weight_gradient_within_tolerance():
    plain, compressed = _pair(32, 4, groups=4)  # sub-tokens of 8 features
    torch.manual_seed(1)
    direction = torch.randn(8)
    # Sub-tokens near one common direction with a non-zero mean coefficient (VeLoRA's batch-mean v
    # needs one), plus 5% relative noise.
    x = (1 + 0.5 * torch.randn(6, 7, 4, 1)) * direction + 0.05 * direction.norm() / 8 ** 0.5 * torch.randn(6, 7, 4, 8)
    x = x.reshape(6, 7, 32)
    upstream = torch.randn(6, 7, 4)
    (out_p, gx_p, gw_p), (out_c, gx_c, gw_c) = _grads(plain, x, upstream), _grads(compressed, x, upstream)
    assert torch.equal(out_p, out_c)
    assert torch.allclose(gx_p, gx_c, atol=1e-6)
    assert ((gw_c - gw_p).norm() / gw_p.norm()).item() < 0.1
    # What it is exactly: the gradient of the input projected onto v, sub-token by sub-token.
    v = compressed.v
    x_hat = ((x.reshape(6, 7, 4, 8) @ v).unsqueeze(-1) * v).reshape(6, 7, 32)
    assert torch.allclose(gw_c, upstream.reshape(-1, 4).T @ x_hat.reshape(-1, 32), atol=1e-5)
    # v: the first training batch's normalised mean sub-token, kept afterwards.
    assert torch.allclose(v, x.reshape(-1, 8).mean(0) / x.reshape(-1, 8).mean(0).norm(), atol=1e-6)


def test_saves_groups_instead_of_features():
    plain, compressed = _pair(768, 16, groups=32)
    x = torch.randn(2, 10, 768)
    # Both keep A (16*768, a parameter: no new memory); plain keeps x (2*10*768), compressed z
    # (2*10*32) and v (24).
    assert _saved_numbers(plain, x) == 2 * 10 * 768 + 16 * 768
    assert _saved_numbers(compressed, x) == 2 * 10 * 32 + 16 * 768 + 24


def test_groups_must_divide_the_features():
    with pytest.raises(UserError, match="velora_groups=5"):
        SubTokenLoRAA(32, 4, groups=5)


def _network(velora_groups: int | None, parts: list[str]) -> One4All:
    torch.manual_seed(0)
    spec = AdapterSpec(lora_targets=["wpe", "head", *PROJECTIONS], dropout=0.0, velora_groups=velora_groups,
                       velora_parts=parts)
    net = One4All(IOSpec(seq_len=96, n_channels=1, horizon=24), BackboneSpec(init="random", n_layers=2,
                  dropout=0.0, config=TINY_GPT2), spec, embed_dropout=0.0)
    with torch.no_grad():  # B = 0 at init would leave A without gradient
        for name, p in net.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    return net.train()


def _network_grads(net: One4All, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    out = net(x)
    out.square().mean().backward()
    return out.detach(), {n: p.grad for n, p in net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("parts,exact", [(["c_attn", "attn_proj", "mlp_fc"], True), (PROJECTIONS, False)])
def test_network_forward_exact_and_only_compressed_a_gradients_differ(parts, exact):
    # n_embd 32 with 32 groups: sub-tokens of one feature, lossless for c_attn/attn_proj/mlp_fc;
    # mlp_proj (128 inputs) gets sub-tokens of 4 features and an approximate grad A.
    x = torch.randn(4, 96, 1)
    out_p, grads_p = _network_grads(_network(None, parts), x)
    out_c, grads_c = _network_grads(_network(32, parts), x)
    assert torch.equal(out_p, out_c)
    assert grads_p.keys() == grads_c.keys()
    for name in grads_p:
        approximate = not exact and "mlp.c_proj.lora_A" in name
        if not approximate:
            assert torch.allclose(grads_p[name], grads_c[name], rtol=1e-4, atol=1e-7), name


def test_lars_config_composes_and_validates_parts():
    spec = AdapterSpec(lora_targets=["wpe", "head"], velora_groups=32, velora_parts=["c_attn"])
    with pytest.raises(UserError, match="velora_parts"):
        One4All(IOSpec(seq_len=96, n_channels=1, horizon=24), BackboneSpec(init="random", n_layers=2,
                config=TINY_GPT2), spec)
