"""Packed-lane dropout (one4all.models.fast_dropout): same distribution as torch's dropout, shown by
statistical tests; eval exact; masks reproducible from torch's RNG state (resume).

The tests are seeded, so each statistic is one fixed number; the bounds are those of a test at
significance ~1e-5, so a correct generator passes with any seed (a biased or correlated one fails:
`test_dropout_tests_detect_a_biased_or_correlated_mask`). Normal and chi-square tails are written
with math.erfc: scipy is not a dependency, and at these sample sizes the approximations are exact
to far below the bounds.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from one4all.adapters import LoRASpec
from one4all.contract import IOSpec
from one4all.models.backbone import BackboneSpec
from one4all.models.fast_dropout import LANES, FastDropout, dropout, keep_count, keep_mask, packed
from one4all.models.fast_gpt2 import attention
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

N = 2_000_000
ALPHA = 1e-5  # significance of each test


def binomial_p_value(kept: int, n: int, q: float) -> float:
    """Two-sided p-value of `kept` successes in `n` draws with probability q (normal approximation)."""
    z = (kept - n * q) / math.sqrt(n * q * (1 - q))
    return math.erfc(abs(z) / math.sqrt(2))


def pair_chi_square(a: torch.Tensor, b: torch.Tensor) -> float:
    """p-value of the chi-square test of independence (1 dof) of two boolean samples, paired."""
    n = len(a)
    table = torch.stack([(a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()]).double().view(2, 2)
    expected = table.sum(1, keepdim=True) * table.sum(0, keepdim=True) / n
    statistic = ((table - expected) ** 2 / expected).sum().item()
    return math.erfc(math.sqrt(statistic / 2))  # chi-square(1) tail


def independence_p_values(mask: torch.Tensor) -> dict[str, float]:
    """Neighbours at lags 1-3 (lanes of one 64-bit word), 4 (same lane of the next word), 5 and 64,
    and each lane position's keep rate against the others'."""
    flat = mask.flatten()
    out = {f"lag {lag}": pair_chi_square(flat[:-lag], flat[lag:]) for lag in (1, 2, 3, 4, 5, 64)}
    lanes = flat[: len(flat) // 4 * 4].view(-1, 4)
    for lane in range(4):
        rest = lanes[:, [i for i in range(4) if i != lane]].flatten()
        # Keep rate of this lane vs the other three: two-proportion z-test.
        p1, p2 = lanes[:, lane].double().mean(), rest.double().mean()
        pooled = (p1 * len(lanes) + p2 * len(rest)) / (len(lanes) + len(rest))
        z = (p1 - p2) / torch.sqrt(pooled * (1 - pooled) * (1 / len(lanes) + 1 / len(rest)))
        out[f"lane {lane}"] = math.erfc(abs(z.item()) / math.sqrt(2))
    return out


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3, 0.5])
def test_dropout_keep_rate_is_binomial(p):
    torch.manual_seed(2021)
    mask = keep_mask((N,), p)
    q = keep_count(p) / LANES
    assert abs(q - (1 - p)) <= 2**-17  # the 16-bit quantisation of p
    assert binomial_p_value(int(mask.sum()), N, q) > ALPHA
    # The quantisation is below what a sample this size can see: the same test against the exact 1 - p.
    assert binomial_p_value(int(mask.sum()), N, 1 - p) > ALPHA


def test_dropout_quantisation_of_p_by_hand():
    # p = 0.1: k = round(0.9 * 65536) = 58982, drop rate 6554 / 65536 = 0.100006103515625.
    assert keep_count(0.1) == 58982 and pytest.approx(0.1 + 6.103515625e-6, abs=1e-15) == 1 - 58982 / LANES
    # A 6.1e-6 shift of the drop rate is 3 standard errors only at 9 * 0.09 / (6.1e-6)^2 = 2.2e10 masks:
    # no single step (ETTh1 L=336, batch 256: 1.5e8 masks) can see it; all the masks of 0.7 epoch
    # pooled could (579k masks per channel window, 57,463 windows per epoch).
    assert packed(0.1) and packed(0.01) and not packed(1e-6) and not packed(1 - 1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_masks_are_independent(p):
    torch.manual_seed(7)
    mask = keep_mask((N,), p)
    p_values = independence_p_values(mask)
    assert min(p_values.values()) > ALPHA, p_values
    # Along the other axis of a 2-D mask too (rows of an activation: elements 768 apart).
    torch.manual_seed(8)
    rows = keep_mask((N // 768, 768), p)
    assert pair_chi_square(rows[:-1].flatten(), rows[1:].flatten()) > ALPHA


def test_dropout_tests_detect_a_biased_or_correlated_mask():
    torch.manual_seed(0)
    biased = torch.rand(N) < 0.898  # 0.002 off
    assert binomial_p_value(int(biased.sum()), N, 0.9) < ALPHA
    words = torch.rand(N // 4) < 0.9
    correlated = words.repeat_interleave(4) ^ (torch.rand(N) < 0.02)  # lanes of a word mostly agree
    assert independence_p_values(correlated)["lag 1"] < ALPHA


def test_dropout_matches_torch_dropout_in_distribution():
    torch.manual_seed(3)
    x = torch.ones(N)
    ours, theirs = dropout(x, 0.1), nn.functional.dropout(x, 0.1, training=True)
    kept = [int((y != 0).sum()) for y in (ours, theirs)]
    # Two-proportion test between the two implementations' keep rates.
    p1, p2 = kept[0] / N, kept[1] / N
    pooled = (kept[0] + kept[1]) / (2 * N)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * 2 / N)
    assert math.erfc(abs(z) / math.sqrt(2)) > ALPHA
    # Unbiased: kept elements scaled by the exact inverse keep probability.
    assert set(ours.unique().tolist()) == {0.0, float(torch.tensor(LANES / keep_count(0.1)))}
    assert ours.double().mean().item() == pytest.approx(1.0, abs=5 * math.sqrt(0.1 / 0.9 / N))


def test_dropout_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 100, requires_grad=True)
    y = dropout(x, 0.2)
    y.backward(torch.ones_like(y))
    scale = LANES / keep_count(0.2)
    kept = y != 0
    assert torch.equal(x.grad, kept.float() * scale)
    assert torch.allclose(y[kept], x[kept] * scale) and 0.7 < kept.float().mean() < 0.9


def test_dropout_bf16_keeps_dtype_and_scales_in_fp32():
    torch.manual_seed(0)
    x = torch.ones(10_000, dtype=torch.bfloat16)
    y = dropout(x, 0.1)
    assert y.dtype == torch.bfloat16
    # 1.11112 rounded once to bf16 (torch's dropout divides a bf16 noise tensor instead).
    assert set(y.unique().tolist()) == {0.0, float(torch.tensor(LANES / keep_count(0.1)).bfloat16())}


def test_dropout_eval_and_p0_are_exact_identity():
    module = FastDropout(0.1).eval()
    x = torch.randn(5, 7)
    assert module(x) is x
    assert dropout(x, 0.0) is x and dropout(x, 0.5, training=False) is x
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))  # p outside the lanes: torch's dropout


def test_dropout_masks_follow_torch_rng_state():
    x = torch.randn(1000)
    torch.manual_seed(11)
    state = torch.get_rng_state()
    first = dropout(x, 0.1)
    second = dropout(x, 0.1)
    torch.set_rng_state(state)  # what resuming from a checkpoint does (one4all.checkpointing)
    assert torch.equal(dropout(x, 0.1), first) and torch.equal(dropout(x, 0.1), second)
    assert not torch.equal(first, second)
    torch.manual_seed(11)
    assert torch.equal(dropout(x, 0.1), first)


def test_dropout_masks_do_not_depend_on_thread_count():
    threads = torch.get_num_threads()
    masks = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            torch.manual_seed(5)
            masks.append(keep_mask((100_003,), 0.1))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(*masks)


def _tiny(**kwargs) -> One4All:
    torch.manual_seed(0)
    backbone = BackboneSpec(init="random", n_layers=2, config=TINY_GPT2)
    return One4All(IOSpec(64, 1, horizon=12), backbone, LoRASpec(), **kwargs)


def test_fast_dropout_replaces_every_network_dropout():
    net = _tiny()
    sites = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    # GPT-2: embeddings + 3 per block; the LoRA dropouts of wpe and the head.
    assert len(sites) == 1 + 3 * 2 + 2 and all(type(m) is FastDropout for m in sites)
    assert {m.p for m in sites} == {0.1, 0.01}
    plain = _tiny(fast_dropout=False)
    assert all(type(m) is nn.Dropout for m in plain.modules() if isinstance(m, nn.Dropout))
    x = torch.randn(4, 64, 1)
    with torch.no_grad():  # eval: the same function either way
        assert torch.equal(net.eval()(x), plain.eval()(x))


class _Attention(nn.Module):
    is_causal = True

    def __init__(self, p: float) -> None:
        super().__init__()
        self.attn_dropout = FastDropout(p)


def test_attention_dropout_rate_and_causal_mask():
    torch.manual_seed(0)
    q, k, v = (torch.randn(64, 4, 16, 8) for _ in range(3))
    module = _Attention(0.25).eval()
    out, weights = attention(module, q, k, v, None, scaling=8**-0.5)
    expected = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(out.transpose(1, 2), expected, atol=1e-6)
    _, dropped = attention(module.train(), q, k, v, None, scaling=8**-0.5)
    allowed = torch.ones(16, 16, dtype=torch.bool).tril().expand_as(dropped)
    assert (dropped[~allowed] == 0).all()  # the future stays masked
    kept = int((dropped[allowed] != 0).sum())
    assert binomial_p_value(kept, int(allowed.sum()), keep_count(0.25) / LANES) > ALPHA
