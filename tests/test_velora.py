"""VeLoRA-compressed LoRA inputs (adapter=lars, peft's VeloraConfig): exact forward, exact input
gradients, grad A from the sub-token projection formula, less saved, and v kept across a reload."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from one4all.adapters.lora import LoRASpec
from one4all.adapters.velora import VeLoRASpec
from one4all.contract import IOSpec
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

PROJECTIONS = ["c_attn", "attn_proj", "mlp_fc", "mlp_proj"]


class _Projection(nn.Module):
    """One linear layer for peft to wrap (`proj`), like a block projection."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, out_features)


def _pair(in_features: int, rank: int, groups: int) -> tuple[nn.Module, nn.Module]:
    """The same LoRA (A random, B non-zero so A gets a gradient) without and with VeLoRA."""
    made = []
    for spec in (LoRASpec(rank=rank, dropout=0.0), VeLoRASpec(rank=rank, dropout=0.0, velora_groups=groups)):
        torch.manual_seed(0)
        module = _Projection(in_features, 6)
        spec.inject(module, {"part": ["proj"]})
        with torch.no_grad():
            module.proj.lora_B["default"].weight.normal_(generator=torch.Generator().manual_seed(1))
        module.requires_grad_(False)
        module.proj.lora_A["default"].weight.requires_grad_(True)
        made.append(module.train())
    return made[0], made[1]


def _grads(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_(True)
    out = module.proj(x)
    (out * upstream).sum().backward()
    return out.detach(), x.grad, module.proj.lora_A["default"].weight.grad


def test_lossless_when_sub_tokens_are_single_features():
    # 12 groups of 12 features -> sub-tokens of size 1: v = +-1 and x_hat = x exactly.
    plain, compressed = _pair(12, 3, groups=12)
    x, upstream = torch.randn(4, 5, 12), torch.randn(4, 5, 6)
    for a, b in zip(_grads(plain, x, upstream), _grads(compressed, x, upstream)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_forward_and_input_gradient_exact_and_grad_a_is_the_sub_token_projection():
    plain, compressed = _pair(32, 4, groups=4)  # sub-tokens of 8 features
    torch.manual_seed(1)
    direction = torch.randn(8)
    # Sub-tokens near one common direction with a non-zero mean coefficient, plus 5% relative noise.
    x = (1 + 0.5 * torch.randn(6, 7, 4, 1)) * direction + 0.05 * direction.norm() / 8 ** 0.5 * torch.randn(6, 7, 4, 8)
    x = x.reshape(6, 7, 32)
    upstream = torch.randn(6, 7, 6)
    (out_p, gx_p, ga_p), (out_c, gx_c, ga_c) = _grads(plain, x, upstream), _grads(compressed, x, upstream)
    assert torch.equal(out_p, out_c)
    assert torch.allclose(gx_p, gx_c, atol=1e-6)
    assert ((ga_c - ga_p).norm() / ga_p.norm()).item() < 0.1
    # The formula: v = the first training batch's normalised mean sub-token; x_hat = (s . v) v per
    # sub-token s; grad A = (grad of A's output)^T x_hat.
    mean = x.reshape(-1, 8).mean(0)
    v = mean / mean.norm()
    assert torch.allclose(compressed.proj.lora_velora_embed["default"], v, atol=1e-6)
    x_hat = ((x.reshape(6, 7, 4, 8) @ v).unsqueeze(-1) * v).reshape(6, 7, 32)
    lora = compressed.proj
    grad_after_a = (upstream * lora.scaling["default"]) @ lora.lora_B["default"].weight
    assert torch.allclose(ga_c, grad_after_a.reshape(-1, 4).T @ x_hat.reshape(-1, 32), atol=1e-5)


def test_saves_groups_instead_of_features():
    plain, compressed = _pair(768, 16, groups=32)
    x = torch.randn(2, 10, 768, requires_grad=True)

    def saved(module: nn.Module) -> int:
        numbers = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: numbers.append(t.numel()) or t, lambda t: t):
            module.proj(x)
        return sum(numbers)

    # Same base layer and B in both; A keeps its input x (2*10*768) without VeLoRA, and z (2*10*32)
    # plus v (24) with it (A's weight is saved by both).
    assert saved(plain) - saved(compressed) == 2 * 10 * 768 - (2 * 10 * 32 + 24)


def _network(spec: LoRASpec) -> One4All:
    torch.manual_seed(0)
    net = One4All(IOSpec(seq_len=96, n_channels=1, horizon=24), BackboneSpec(init="random", n_layers=2,
                  dropout=0.0, config=TINY_GPT2), spec, embed_dropout=0.0)
    with torch.no_grad():  # B = 0 at init would leave A without gradient
        for name, p in net.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    return net.train()


def _lars(parts: list[str]) -> VeLoRASpec:
    return VeLoRASpec(lora_targets=["wpe", "head", *PROJECTIONS], dropout=0.0, velora_groups=32, velora_parts=parts)


def _network_grads(net: One4All, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    out = net(x)
    out.square().mean().backward()
    return out.detach(), {n: p.grad for n, p in net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("parts,exact", [(["c_attn", "attn_proj", "mlp_fc"], True), (PROJECTIONS, False)])
def test_network_forward_exact_and_only_compressed_a_gradients_differ(parts, exact):
    # n_embd 32 with 32 groups: sub-tokens of one feature, lossless for c_attn/attn_proj/mlp_fc;
    # mlp_proj (128 inputs) gets sub-tokens of 4 features and an approximate grad A.
    x = torch.randn(4, 96, 1)
    plain = _network(LoRASpec(lora_targets=["wpe", "head", *PROJECTIONS], dropout=0.0))
    compressed = _network(_lars(parts))
    compressed.load_state_dict(plain.state_dict(), strict=False)  # same weights; VeLoRA's v is extra
    out_p, grads_p = _network_grads(plain, x)
    out_c, grads_c = _network_grads(compressed, x)
    assert torch.equal(out_p, out_c)
    assert grads_p.keys() == grads_c.keys()
    for name in grads_p:
        approximate = not exact and "mlp.c_proj.lora_A" in name
        if not approximate:
            assert torch.allclose(grads_p[name], grads_c[name], rtol=1e-4, atol=1e-7), name


def test_reloaded_projection_keeps_its_v_for_resumed_training():
    net = _network(_lars(PROJECTIONS))
    net(torch.randn(4, 96, 1)).sum().backward()  # the first training batch sets v
    state = {k: v.clone() for k, v in net.state_dict().items()}
    v_key = "gpt2.h.0.mlp.c_proj.lora_velora_embed.default"
    assert state[v_key].any()
    fresh = _network(_lars(PROJECTIONS))
    fresh.load_state_dict(state)
    fresh(10 * torch.randn(4, 96, 1)).sum().backward()  # another batch: a fresh v would differ
    assert torch.equal(fresh.state_dict()[v_key], state[v_key])


def test_lars_validates_its_parts():
    with pytest.raises(UserError, match="velora_parts"):
        _network(VeLoRASpec(lora_targets=["wpe", "head"], velora_groups=32, velora_parts=["c_attn"]))
    with pytest.raises(UserError, match="linear layers"):
        _network(VeLoRASpec(lora_targets=["wpe", "head"], velora_groups=32, velora_parts=["wpe"]))
