"""GPU readiness without a GPU: off the CPU, attention goes to transformers' SDPA (fused dropout)
and dropout to torch's fused kernel (checked on the `meta` device, which runs shapes only), and
`model.backbone.compile=true` compiles GPT-2 in place without changing what it computes."""

from __future__ import annotations

import torch
from torch import nn

import one4all.models.fast_gpt2 as fast_gpt2
from one4all.models.backbone import BackboneSpec, load_backbone
from one4all.models.fast_dropout import FastDropout, dropout
from tests.conftest import TINY_GPT2


class _Attention(nn.Module):
    is_causal = True

    def __init__(self) -> None:
        super().__init__()
        self.attn_dropout = FastDropout(0.1)


def test_attention_off_the_cpu_is_sdpa_with_dropout(monkeypatch):
    seen = []

    def spy(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        seen.append((query.device.type, attention_mask, dropout))
        return torch.empty_like(query).transpose(1, 2), None

    monkeypatch.setattr(fast_gpt2, "sdpa_attention_forward", spy)
    q = torch.empty(2, 4, 8, 16, device="meta")
    out, weights = fast_gpt2.attention(_Attention().train(), q, q, q, None, scaling=0.25, dropout=0.1)
    assert seen == [("meta", None, 0.1)] and out.shape == (2, 8, 4, 16) and weights is None
    # On the CPU the same call is the eager formulation: no SDPA, attention weights returned.
    out, weights = fast_gpt2.attention(_Attention().eval(), *(torch.randn(2, 4, 8, 16) for _ in range(3)), None)
    assert len(seen) == 1 and weights.shape == (2, 4, 8, 8)


def test_dropout_off_the_cpu_is_torch_dropout(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.nn.functional, "dropout", lambda x, p, training: calls.append(p) or x)
    x = torch.empty(10, device="meta")
    assert dropout(x, 0.1) is x and calls == [0.1]


def test_compiled_backbone_computes_the_same(monkeypatch):
    compiled = []
    original = nn.Module.compile

    def compile_eager(self, *args, **kwargs):
        # Dynamo's tracing without inductor's code generation: seconds, not minutes, on a CPU.
        compiled.append(type(self).__name__)
        return original(self, *args, backend="eager", **kwargs)

    monkeypatch.setattr(nn.Module, "compile", compile_eager)
    spec = {"init": "random", "n_layers": 2, "config": TINY_GPT2}
    fast = load_backbone(BackboneSpec(**spec, compile=True)).model.train()
    plain = load_backbone(BackboneSpec(**spec)).model.train()
    assert compiled == ["GPT2Model"] and list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(3, 8, 32)
    outputs = []
    for model in (fast, plain):
        torch.manual_seed(4)  # the same dropout draws through both
        outputs.append(model(inputs_embeds=x).last_hidden_state)
    assert torch.allclose(*outputs, atol=1e-6)
