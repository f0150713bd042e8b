"""Parity with the authors' code: one4all's networks against outputs stored from their modules.

The fixtures in tests/fixtures/ come from scripts/make_parity_fixtures.py, which runs the authors'
module definitions (One-for-All, GPT4TS, Time-Series-Library; commits in its docstring and in each
file's metadata) on a seeded batch at a tiny size. Each test builds the one4all network with the
same settings, loads the reference weights, and compares the forward (eval mode) within 1e-5, the
set of trainable parameters, and the gradients of a fixed loss (train mode, dropout off).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open
from torch import nn

from one4all.adapters import LoRASpec
from one4all.config import compose_config
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.marks import compute_marks
from one4all.models.backbone import BackboneSpec
from one4all.models.baselines.timesnet import TimesNet
from one4all.models.one4all import One4All
from one4all.train import build

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-5


def load_fixture(name: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Tensors grouped by prefix (input, weight, grad, ...) and the metadata."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    with safe_open(str(FIXTURES / f"{name}.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
        for key in sorted(f.keys()):
            group, _, rest = key.partition(".")
            groups.setdefault(group, {})[rest] = f.get_tensor(key)
    return groups, meta


def tiny_backbone(meta: dict) -> BackboneSpec:
    gpt2 = meta["gpt2"]
    return BackboneSpec(init="random", n_layers=gpt2["n_layer"], dropout=0.0,
                        config={k: gpt2[k] for k in ("n_embd", "n_head", "n_positions")})


def load_reference(network: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load the reference weights: every parameter and persistent buffer of ours must be given,
    except GPT-2's token table (one4all keeps a 1-row stub: inputs are always embeddings)."""
    missing, unexpected = network.load_state_dict(weights, strict=False)
    assert unexpected == []
    assert [key for key in missing if not key.endswith("wte.weight")] == []


def check(network: nn.Module, groups: dict, meta: dict, run) -> None:
    """Forward within TOL; the same trainable parameters; gradients of the stored loss within TOL."""
    load_reference(network, groups["weight"])
    network.eval()
    with torch.no_grad():
        out = run(network)
    assert out.shape == groups["output"][""].shape
    assert torch.allclose(out, groups["output"][""], atol=TOL, rtol=0), (out - groups["output"][""]).abs().max()
    trainable = sorted(n for n, p in network.named_parameters() if p.requires_grad)
    assert trainable == meta["trainable"]
    assert count_parameters(network)["trainable_params"] == meta["trainable_params"]
    network.train()
    network.zero_grad()
    (run(network) * groups["loss_weights"][""]).sum().backward()
    params = dict(network.named_parameters())
    for name, expected in groups["grad"].items():
        # A parameter the forward never reads gets no gradient (the fixture stores zeros for it).
        grad = torch.zeros_like(params[name]) if params[name].grad is None else params[name].grad
        assert torch.allclose(grad, expected, atol=TOL, rtol=1e-4), name


@pytest.mark.parametrize("name,preset", [("one4all_long_term", "reference"), ("gpt4ts_long_term", "gpt4ts")])
def test_parity_long_term_forecaster(name, preset):
    groups, meta = load_fixture(name)
    io = IOSpec(meta["seq_len"], meta["n_channels"], horizon=meta["pred_len"])
    network = One4All(io, tiny_backbone(meta), LoRASpec(preset=preset, rank=meta["rank"], dropout=0.0),
                      patch_len=meta["patch_size"], stride=meta["stride"])
    x = groups["input"]["x"]
    check(network, groups, meta, lambda net: net(x))


def test_parity_gpt4ts_imputation_with_marks():
    """GPT4TS's imputation passes timeF marks; its ETTh1 script (`--mlp 1`) also trains the MLP projections."""
    groups, meta = load_fixture("gpt4ts_imputation")
    io = IOSpec(meta["seq_len"], meta["n_channels"], kind="reconstruct", masked=True, freq="h")
    adapter = LoRASpec(preset="gpt4ts", dropout=0.0,
                       train_full=["layernorms", "wpe", "patch_embedding", "head", "mlp_fc", "mlp_proj"])
    network = One4All(io, tiny_backbone(meta), adapter, embed_dropout=0.0, time_features="timeF")
    inputs = groups["input"]
    check(network, groups, meta, lambda net: net(inputs["x"], inputs["mask"], marks=inputs["marks"]))


def test_parity_short_term_network():
    groups, meta = load_fixture("one4all_short_term")
    io = IOSpec(meta["seq_len"], meta["n_channels"], horizon=meta["pred_len"])
    network = One4All(io, tiny_backbone(meta), LoRASpec(preset="reference_short_term", rank=meta["rank"], dropout=0.0),
                      patch_len=1, stride=1, d_ff=meta["d_ff"], embed_dropout=0.0, forecast_layout="step",
                      unused_reference_params=True)
    x = groups["input"]["x"]
    check(network, groups, meta, lambda net: net(x))


def test_parity_short_term_trains_the_authors_count_at_m4_hourly(data_root):
    """One-for-All's M4 Hourly script settings (d_model 768, d_ff 128, rank 16): their module trains
    854,803 parameters (counted by the fixture script from their code), and so does the experiment."""
    _, meta = load_fixture("one4all_short_term")
    assert meta["m4_hourly_trainable_params"] == 854_803
    cfg, _ = compose_config(["experiment=short_term/m4_hourly", f"data.root={data_root}", "model.backbone.init=random"])
    assert count_parameters(build(cfg).network)["trainable_params"] == 854_803


@pytest.mark.parametrize("kind", ["timeF", "fixed"])
def test_parity_timesnet_with_marks(kind):
    groups, meta = load_fixture(f"tslib_timesnet_{kind}")
    io = IOSpec(meta["seq_len"], meta["n_channels"], horizon=meta["pred_len"], freq="h")
    network = TimesNet(io, d_model=meta["d_model"], d_ff=meta["d_ff"], n_layers=meta["n_layers"], top_k=meta["top_k"],
                       n_kernels=meta["n_kernels"], dropout=0.0, time_features=kind)
    x, marks = groups["input"]["x"], groups["input"]["marks"]
    check(network, groups, meta, lambda net: net(x, marks=marks))


@pytest.mark.parametrize("kind", ["timeF", "fixed"])
def test_parity_marks_equal_time_series_library(kind):
    """one4all's marks of the fixture's dates are Time-Series-Library's (timeF: time_features(); fixed: timeenc=0)."""
    groups, _ = load_fixture(f"tslib_timesnet_{kind}")
    for dates, expected in zip(groups["input"]["dates_ns"], groups["input"]["marks"], strict=True):
        stamps = pd.DatetimeIndex(dates.numpy())
        assert torch.allclose(torch.from_numpy(compute_marks(stamps, kind, "h")), expected, atol=1e-6)
