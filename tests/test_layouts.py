"""The One-for-All network for reconstruction and classification: layouts, counts, artifact."""

from __future__ import annotations

import json

import pytest
import torch

from one4all.adapters import LoRASpec
from one4all.artifact import load_artifact, save_artifact
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec
from one4all.models.encoder import ChannelPad, SegmentNorm, sinusoidal_positions
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

TINY = BackboneSpec(init="random", n_layers=2, config=TINY_GPT2)
IMPUTE = IOSpec(96, 7, kind="reconstruct", masked=True)
ANOMALY = IOSpec(100, 25, kind="reconstruct")
CLASSIFY = IOSpec(26, 12, kind="classify", n_classes=9, masked=True)
R = 16


@pytest.mark.parametrize(("io", "kwargs", "n_layers", "expected"), [
    (IMPUTE, {}, 3, R * (1024 + 768) + R * (768 + 7)),                      # 41,072
    (ANOMALY, {"d_ff": 768}, 6, R * (1024 + 768) + R * (768 + 25)),         # 41,360 (SMAP)
    (IOSpec(100, 55, kind="reconstruct"), {"d_ff": 8}, 6, R * (1024 + 768) + R * (8 + 55)),  # MSL
    (CLASSIFY, {"patch_len": 4, "stride": 1}, 6, R * (1024 + 768) + R * (768 * 24 + 9)),  # 323,728
])
def test_reference_counts_at_gpt2_small(io, kwargs, n_layers, expected):
    net = One4All(io, BackboneSpec(init="random", n_layers=n_layers), LoRASpec(), **kwargs)
    assert count_parameters(net)["trainable_params"] == expected
    assert all("lora_" in n for n, p in net.named_parameters() if p.requires_grad)


def test_gpt4ts_preset_trains_embedding_head_and_norms():
    net = One4All(IMPUTE, TINY, LoRASpec(preset="gpt4ts"))
    lns = 2 * 2 * 2 * 32 + 2 * 32
    conv, head, head_norm = 7 * 32 * 3, 32 * 7 + 7, 2 * 32
    assert count_parameters(net)["trainable_params"] == lns + 128 * 32 + conv + head + head_norm


def test_shapes_and_masks():
    torch.manual_seed(0)
    x = torch.randn(3, 96, 7)
    mask = (torch.rand_like(x) > 0.25).float()
    imputer = One4All(IMPUTE, TINY).eval()
    assert imputer(x * mask, mask).shape == (3, 96, 7)
    # hidden entries do not leak: whatever sits under the mask, the output is the same
    assert torch.equal(imputer(x, mask), imputer(x * mask, mask))
    assert One4All(ANOMALY, TINY).eval()(torch.randn(2, 100, 25)).shape == (2, 100, 25)
    classifier = One4All(CLASSIFY, TINY, patch_len=4, stride=1).eval()
    assert classifier(torch.randn(2, 26, 12), torch.ones(2, 26, 12)).shape == (2, 9)
    assert not imputer.channel_independent and classifier.n_patches == 24


def test_classification_tokens_hold_one_patch_of_every_channel():
    net = One4All(IOSpec(8, 2, kind="classify", n_classes=2), TINY, patch_len=4, stride=4)
    x = torch.arange(16.0).reshape(1, 8, 2)  # x[t, c] = 2 t + c
    tokens, _ = net.layout.encode(x, None)
    assert tokens.shape == (1, 3, 8)
    # patch-major: (p0 c0, p0 c1, p1 c0, ...), steps 0..3 of both channels
    assert tokens[0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert tokens[0, 2].tolist() == [14, 15] * 4  # the replication-padded last patch


def test_segment_norm_standardises_each_segment_and_inverts():
    x = torch.cat([torch.zeros(1, 25, 1), torch.full((1, 25, 1), 10.0) + torch.arange(25.0).reshape(1, 25, 1)], 1)
    z, stats = SegmentNorm(25).normalise(x)
    assert stats[0].reshape(-1).tolist() == [0.0, 22.0]
    assert torch.allclose(z[0, 25:].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(SegmentNorm(25).denormalise(z, stats), x, atol=1e-4)


def test_positions_and_channel_pad():
    table = sinusoidal_positions(4, 6)
    assert table[0].tolist() == [0, 1, 0, 1, 0, 1]
    assert table[1, 0].item() == pytest.approx(torch.sin(torch.tensor(1.0)).item())
    assert ChannelPad(5)(torch.ones(1, 2, 3)).tolist() == [[[1, 1, 1, 0, 0]] * 2]


def test_layout_errors_are_one_line():
    with pytest.raises(UserError, match="patch_len=1"):
        One4All(ANOMALY, TINY, patch_len=16)
    with pytest.raises(UserError, match="segment_len"):
        One4All(IOSpec(90, 2, kind="reconstruct"), TINY, segment_len=25)
    with pytest.raises(UserError, match="channel_embedding=linear"):
        One4All(IOSpec(100, 40, kind="reconstruct"), TINY)
    with pytest.raises(UserError, match="no weights"):
        One4All(ANOMALY, TINY, LoRASpec(lora_targets=["patch_embedding"]))
    assert One4All(IOSpec(100, 40, kind="reconstruct"), TINY, channel_embedding="linear")(
        torch.randn(1, 100, 40)).shape == (1, 100, 40)


@pytest.mark.parametrize(("io", "extra"), [(IMPUTE, {}), (ANOMALY, {"d_ff": 16}),
                                           (CLASSIFY, {"patch_len": 4, "stride": 2})])
def test_artifact_regenerates_frozen_embeddings_and_heads(tmp_path, io, extra):
    config = {"_target_": "one4all.models.one4all.One4All", "init_seed": 3, **extra,
              "backbone": {"_target_": "one4all.models.backbones.gpt2.GPT2Spec", "init": "random", "n_layers": 2,
                           "config": TINY_GPT2},
              "adapter": {"_target_": "one4all.adapters.lora.LoRASpec", "preset": "reference", "rank": 4}}
    net = One4All(io, BackboneSpec(init="random", n_layers=2, config=TINY_GPT2), LoRASpec(rank=4),
                  init_seed=3, **extra)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.1)
    net.eval()
    save_artifact(tmp_path / "model", net, config, io, extra={})
    loaded, _ = load_artifact(tmp_path / "model")
    x = torch.randn(2, io.seq_len, io.n_channels)
    args = (x, torch.ones_like(x)) if io.masked else (x,)
    assert torch.equal(loaded(*args), net(*args))
    manifest = json.loads((tmp_path / "model" / "model.json").read_text())
    manifest["network"]["init_seed"] = 4  # the frozen embedding / head base would come out different
    (tmp_path / "model" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="checksum mismatch"):
        load_artifact(tmp_path / "model")
