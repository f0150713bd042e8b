"""Baselines on the network contract: every output kind, exact parameter counts, the papers' building blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from one4all.artifact import load_artifact, save_artifact
from one4all.config import build_object, compose_config
from one4all.contract import IOSpec
from one4all.errors import UserError
from one4all.models.baselines.dlinear import DLinear, MovingAverageDecomposition
from one4all.models.baselines.patchtst import PatchTST
from one4all.models.baselines.timesnet import Inception, TimesNet, top_periods
from one4all.schedules import hold_then_decay

TINY = IOSpec(seq_len=32, n_channels=3, horizon=8)
TINY_PATCHTST = {"patch_len": 8, "stride": 4, "d_model": 8, "n_heads": 2, "d_ff": 16, "n_layers": 2}
TINY_TIMESNET = {"d_model": 4, "d_ff": 8, "n_layers": 1, "top_k": 2, "n_kernels": 2}
ETTH1 = IOSpec(seq_len=336, n_channels=7, horizon=96)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_dlinear_shape_and_parameter_count():
    shared, individual = DLinear(TINY), DLinear(TINY, individual=True)
    x = torch.randn(5, 32, 3)
    assert shared(x).shape == individual(x).shape == (5, 8, 3)
    # two maps (seasonal, trend) of 32 -> 8 with bias; DLinear-I has one pair per channel
    assert n_params(shared) == 2 * (32 * 8 + 8) == 528
    assert n_params(individual) == 3 * 528
    assert n_params(DLinear(ETTH1)) == 64_704


def test_moving_average_pads_with_the_end_values():
    seasonal, trend = MovingAverageDecomposition(3)(torch.tensor([0.0, 1.0, 2.0, 6.0]).view(1, 4, 1))
    # padded series 0 0 1 2 6 6 -> means 1/3, 1, 3, 14/3
    assert torch.allclose(trend.flatten(), torch.tensor([1 / 3, 1.0, 3.0, 14 / 3]))
    assert torch.allclose(seasonal.flatten(), torch.tensor([-1 / 3, 0.0, -1.0, 4 / 3]))
    with pytest.raises(UserError, match="odd"):
        MovingAverageDecomposition(24)


def test_dlinear_average_init_forecasts_a_constant_series_as_itself():
    model = DLinear(TINY)
    with torch.no_grad():
        model.seasonal.bias.zero_()
        model.trend.bias.zero_()
    x = torch.full((2, 32, 3), 1.5)
    assert torch.allclose(model(x), torch.full((2, 8, 3), 1.5))


def test_patchtst_shape_parameter_count_and_channel_independence():
    model = PatchTST(TINY, **TINY_PATCHTST).eval()
    x = torch.randn(4, 32, 3)
    out = model(x)
    assert out.shape == (4, 8, 3) and model.n_patches == (32 - 8) // 4 + 2 == 8
    # embed 8*8+8, positions 8*8, per layer: qkv 3*(64+8), out 64+8, 2 BatchNorms 2*16, FF 8*16+16 + 16*8+8;
    # head 8*8 -> 8
    per_layer = 3 * 72 + 72 + 32 + 144 + 136
    assert n_params(model) == 72 + 64 + 2 * per_layer + (64 * 8 + 8) == 1856
    x2 = x.clone()
    x2[..., 1] += 10.0
    assert torch.allclose(model(x2)[..., 0], out[..., 0], atol=1e-6)
    assert PatchTST.channel_independent


def test_patchtst_42_and_64_on_etth1():
    p42 = PatchTST(ETTH1, d_model=16, n_heads=4, d_ff=128)
    p64 = PatchTST(IOSpec(seq_len=512, n_channels=7, horizon=96), d_model=16, n_heads=4, d_ff=128)
    assert (p42.n_patches, p64.n_patches) == (42, 64)
    # 272 embed + 672 positions + 3 x 5392 encoder + 16*42*96+96 head
    assert n_params(p42) == 272 + 672 + 3 * 5392 + 64_608 == 81_728
    with pytest.raises(UserError, match="divisible"):
        PatchTST(TINY, d_model=16, n_heads=3)


def test_timesnet_shape_and_parameter_count():
    model = TimesNet(TINY, **TINY_TIMESNET)
    assert model(torch.randn(4, 32, 3)).shape == (4, 8, 3)
    # token conv 3*4*3; extend 32 -> 40 with bias; block: inception 4->8 (k=1,3) and 8->4 with a bias each;
    # LayerNorm 2*4; projection 4 -> 3
    block = (4 * 8 * 10 + 2 * 8) + (8 * 4 * 10 + 2 * 4)
    assert n_params(model) == 36 + (32 * 40 + 40) + block + 8 + 15 == 2043
    assert n_params(TimesNet(IOSpec(seq_len=96, n_channels=7, horizon=96))) == 605_415
    assert not TimesNet.channel_independent
    with pytest.raises(UserError, match="top_k"):
        TimesNet(TINY, top_k=21)


def test_top_periods_finds_the_dominant_period():
    t = torch.arange(48.0)
    x = (torch.sin(2 * torch.pi * t / 8) + 0.3 * torch.sin(2 * torch.pi * t / 16)).view(1, 48, 1).repeat(2, 1, 3)
    periods, weights = top_periods(x, 2)
    assert periods == [8, 16] and weights.shape == (2, 2)


def test_merged_inception_equals_the_mean_of_its_convolutions():
    block = Inception(3, 5, n_kernels=3)
    with torch.no_grad():
        block.biases.normal_()
    x = torch.randn(2, 3, 6, 7)
    separate = [F.conv2d(x, w, b, padding=i) for i, (w, b) in enumerate(zip(block.weights, block.biases))]
    assert torch.allclose(block(x), torch.stack(separate).mean(0), atol=1e-5)


RECONSTRUCT = IOSpec(seq_len=32, n_channels=3, kind="reconstruct")
IMPUTE = IOSpec(seq_len=32, n_channels=3, kind="reconstruct", masked=True)
CLASSIFY = IOSpec(seq_len=32, n_channels=3, kind="classify", n_classes=4, masked=True)
TINY_KWARGS = {"dlinear": {}, "patchtst": TINY_PATCHTST, "timesnet": TINY_TIMESNET}


@pytest.mark.parametrize("model", ["dlinear", "patchtst", "timesnet"])
def test_configs_build_every_output_kind(model):
    cfg, _ = compose_config([f"model={model}"])
    x = torch.randn(2, 32, 3)
    assert build_object(cfg.model, io=TINY)(x).shape == (2, 8, 3)
    assert build_object(cfg.model, io=RECONSTRUCT)(x).shape == (2, 32, 3)
    assert build_object(cfg.model, io=IMPUTE)(x, torch.ones_like(x)).shape == (2, 32, 3)
    assert build_object(cfg.model, io=CLASSIFY)(x, torch.ones_like(x)).shape == (2, 4)


def test_task_heads_parameter_counts():
    # DLinear: two 32 -> 32 maps; classify adds Linear(32 * 3 -> 4) on the flattened reconstruction
    assert n_params(DLinear(RECONSTRUCT)) == 2 * (32 * 32 + 32) == 2112
    assert n_params(DLinear(CLASSIFY)) == 2112 + (96 * 4 + 4) == 2500
    # PatchTST: the forecaster's 1856 minus its 64 -> 8 head plus a 64 -> 32 head; classify: Linear(3 * 64 -> 4)
    assert n_params(PatchTST(RECONSTRUCT, **TINY_PATCHTST)) == 1856 - (64 * 8 + 8) + (64 * 32 + 32) == 3416
    assert n_params(PatchTST(CLASSIFY, **TINY_PATCHTST)) == 1856 - (64 * 8 + 8) + (192 * 4 + 4) == 2108
    # TimesNet: no 32 -> 40 time extension; classify swaps the 4 -> 3 projection for Linear(4 * 32 -> 4)
    assert n_params(TimesNet(RECONSTRUCT, **TINY_TIMESNET)) == 2043 - (32 * 40 + 40) == 723
    assert n_params(TimesNet(CLASSIFY, **TINY_TIMESNET)) == 723 - 15 + (128 * 4 + 4) == 1224


def test_dlinear_reconstructs_a_constant_series_and_ignores_the_mask():
    model = DLinear(IMPUTE)
    with torch.no_grad():
        model.seasonal.bias.zero_()
        model.trend.bias.zero_()
    x = torch.full((2, 32, 3), 2.0)
    assert torch.allclose(model(x, torch.zeros_like(x)), x) and torch.equal(model(x, torch.zeros_like(x)), model(x))


@pytest.mark.parametrize("model", ["patchtst", "timesnet"])
def test_imputation_norm_uses_observed_entries_only(model):
    """Observed values moved by a * x + b move the output by the same map; hidden entries arrive as 0."""
    torch.manual_seed(0)
    net = {"patchtst": PatchTST, "timesnet": TimesNet}[model](IMPUTE, **TINY_KWARGS[model]).eval()
    x = torch.randn(4, 32, 3)
    mask = (torch.rand(4, 32, 3) > 0.3).float()
    out = net(x * mask, mask)
    moved = net((3.0 * x + 5.0) * mask, mask)
    assert torch.allclose(moved, 3.0 * out + 5.0, atol=1e-3)
    # the unmasked anomaly path standardises over all steps: also equivariant
    anomaly = {"patchtst": PatchTST, "timesnet": TimesNet}[model](RECONSTRUCT, **TINY_KWARGS[model]).eval()
    assert torch.allclose(anomaly(3.0 * x + 5.0), 3.0 * anomaly(x) + 5.0, atol=1e-3)


def test_timesnet_classifier_never_reads_padded_steps_at_its_head():
    torch.manual_seed(0)
    net = TimesNet(CLASSIFY, **TINY_TIMESNET)
    mask = torch.ones(2, 32, 3)
    mask[:, 28:] = 0.0  # the last 4 steps are padding
    net(torch.randn(2, 32, 3) * mask, mask).sum().backward()
    grad = net.projection.weight.grad.view(4, 32, 4)  # [classes, steps, d_model]
    assert grad[:, 28:].abs().sum() == 0 and grad[:, :28].abs().sum() > 0


def test_patchtst_classifier_sees_every_channel():
    torch.manual_seed(0)
    net = PatchTST(CLASSIFY, **TINY_PATCHTST).eval()
    x, mask = torch.randn(2, 32, 3), torch.ones(2, 32, 3)
    changed = x.clone()
    changed[..., 2] = torch.randn(2, 32)
    assert not torch.allclose(net(x, mask), net(changed, mask))


def test_hold_then_decay_matches_tslib_type1_and_patchtst_type3():
    for gamma, hold, expected in ((0.5, 1, [1, 1, 0.5, 0.25, 0.125]), (0.9, 3, [1, 1, 1, 1, 0.9, 0.81])):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
        schedule = hold_then_decay(optimizer, gamma, hold)
        lrs = []
        for _ in expected:
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        assert lrs == pytest.approx([2.0 * e for e in expected])


@pytest.mark.parametrize("model", ["dlinear", "patchtst", "timesnet"])
@pytest.mark.parametrize("io", [TINY, CLASSIFY], ids=["forecast", "classify"])
def test_artifact_holds_every_weight_and_reproduces_the_network(model, io, tmp_path):
    cfg, _ = compose_config([f"model={model}"])
    network = build_object(cfg.model, io=io)
    x = torch.randn(3, 32, 3)
    inputs = (x, torch.ones_like(x)) if io.masked else (x,)
    network.train()
    network(*inputs)  # moves BatchNorm running statistics away from their initial values
    network.eval()
    save_artifact(tmp_path / "model", network, OmegaConf.to_container(cfg.model), io, extra={})
    loaded, _ = load_artifact(tmp_path / "model")
    assert torch.equal(loaded(*inputs), network(*inputs))
    assert sum(p.numel() for p in loaded.parameters()) == n_params(network)
