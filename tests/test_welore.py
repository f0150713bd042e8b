"""WeLore: exact factorisation of GPT-2's Conv1D, hand-checked rank selection, artifact round trip."""

from __future__ import annotations

import json

import pytest
import torch
from transformers.pytorch_utils import Conv1D

from one4all.artifact import MANIFEST, frozen_checksums, load_artifact, save_artifact
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.errors import UserError
from one4all.lowrank.factorised import FactorisedConv1D
from one4all.lowrank.welore import WeLoreSpec, find_threshold, kept_ranks, normalised_spectrum, rank_reduction
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

IO = IOSpec(seq_len=48, n_channels=1, horizon=12)


def conv(nx: int = 32, nf: int = 96, seed: int = 0) -> Conv1D:
    layer = Conv1D(nf, nx)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(nx, nf, generator=g))
        layer.bias.copy_(torch.randn(nf, generator=g))
    return layer


@pytest.mark.parametrize("ranks", [[32], [32, 32, 32], [None, 32, None]])
def test_full_rank_factorisation_reproduces_conv1d(ranks):
    layer = conv()
    x = torch.randn(5, 7, 32)
    factorised = FactorisedConv1D(layer.weight, layer.bias, ranks)
    assert torch.allclose(factorised(x), layer(x), atol=1e-4)


def test_truncation_is_the_best_rank_r_approximation_and_counts_by_hand():
    layer = conv()
    factorised = FactorisedConv1D(layer.weight, layer.bias, [4, None, 2])
    # LRC: r (in + out_group); N-LRC: in * out_group (32 x 32); bias stays separate and frozen.
    assert factorised.weight_params() == 4 * (32 + 32) + 32 * 32 + 2 * (32 + 32) == 1408
    assert sum(p.numel() for p in factorised.parameters() if p.requires_grad) == 4 * 64 + 2 * 64
    q = layer.weight[:, :32].detach()
    with torch.no_grad():
        approx = factorised(torch.eye(32)) - factorised.bias  # rows: W_r in Conv1D orientation
    sigma = torch.linalg.svdvals(q.double())
    error = (q - approx[:, :32]).double().norm() ** 2
    assert error.item() == pytest.approx(float((sigma[4:] ** 2).sum()), rel=1e-4)
    assert torch.allclose(approx[:, 32:64], layer.weight[:, 32:64], atol=1e-5)


def test_threshold_and_rank_reduction_by_hand():
    spectra = [torch.tensor([0.0, 0.1, 0.2, 0.5, 1.0], dtype=torch.float64),
               torch.tensor([0.0, 0.3, 0.6, 1.0], dtype=torch.float64)]
    # k = 0.25: first prunes 3/5 > 0.5 -> LRC keeping 2; second prunes 1/4 -> stays dense
    assert kept_ranks(spectra, 0.25, 0.5) == [2, None]
    assert rank_reduction(spectra, [2, None]) == pytest.approx(1 - 6 / 9)
    # ERR is 0 up to k = 0.2 and 1/3 just above it: the smallest k reaching 1/3 is 0.2+
    k = find_threshold(spectra, 1 / 3, 0.5)
    assert 0.2 < k < 0.2 + 1e-9
    with pytest.raises(UserError, match="rank_reduction"):
        find_threshold(spectra, 0.95, 0.5)


def tiny(spec: WeLoreSpec) -> One4All:
    return One4All(IO, BackboneSpec(init="random", n_layers=2, seed=11, config=TINY_GPT2), spec,
                   patch_len=8, stride=4, init_seed=5)


def test_network_compression_report_and_trainable_parts():
    spec = WeLoreSpec(rank=4, rank_reduction=0.4)
    net = tiny(spec)
    report = net.adapter_report
    assert report["rank_reduction"] >= 0.4 and report["matrices"] == 2 * (3 + 1 + 1 + 1)
    original = 2 * (32 * 96 + 32 * 32 + 32 * 128 + 128 * 32)
    assert report["original_params"] == original
    factorised = [m for m in net.modules() if isinstance(m, FactorisedConv1D)]
    dense = sum(net.get_submodule(n).weight.numel() for n, r in spec.kept_ranks.items() if all(x is None for x in r))
    assert report["compressed_params"] == sum(m.weight_params() for m in factorised) + dense < original
    factors = sum(p.numel() for m in factorised for n, p in m.named_parameters() if ".down." in f".{n}" or ".up." in n)
    lora = 4 * (128 + 32) + 4 * (32 * net.n_patches + 12)
    assert count_parameters(net)["trainable_params"] == factors + lora
    assert not any(p.requires_grad for m in factorised for n, p in m.named_parameters() if "parts" not in n)


def test_projection_in_lora_targets_is_refused():
    with pytest.raises(UserError, match="compressed by WeLore"):
        tiny(WeLoreSpec(lora_targets=["wpe", "head", "c_attn"]))


def test_artifact_replays_kept_ranks_and_verifies_frozen_parts(tmp_path):
    spec = WeLoreSpec(rank=4, rank_reduction=0.4)
    net = tiny(spec)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05)
    net.eval()
    config = {"_target_": "one4all.models.one4all.One4All", "patch_len": 8, "stride": 4, "init_seed": 5,
              "backbone": {"_target_": "one4all.models.backbones.gpt2.GPT2Spec", "init": "random", "n_layers": 2,
                           "seed": 11, "config": TINY_GPT2},
              "adapter": {"_target_": "one4all.lowrank.welore.WeLoreSpec", "rank": 4, "rank_reduction": 0.4,
                          **spec.replay()}}
    artifact = save_artifact(tmp_path / "model", net, config, IO, extra={})
    loaded, _ = load_artifact(artifact)
    x = torch.randn(3, 48, 1)
    assert torch.equal(loaded(x), net(x))
    assert frozen_checksums(loaded) == frozen_checksums(net)
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["network"]["adapter"]["kept_ranks"]["gpt2.h.1.mlp.c_fc"] = [None]
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="checksum mismatch|do not match"):
        load_artifact(artifact)


def test_normalised_spectrum_matches_svd_in_both_orientations():
    weight = torch.randn(20, 50, generator=torch.Generator().manual_seed(3))
    sigma = torch.linalg.svdvals(weight.double())
    expected = torch.sort((sigma - sigma.min()) / (sigma.max() - sigma.min())).values
    assert torch.allclose(normalised_spectrum(weight), expected, atol=1e-10)
    assert torch.allclose(normalised_spectrum(weight.T), expected, atol=1e-10)
