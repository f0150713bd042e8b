"""The model artifact: trainable state only, bit-identical predictions in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from one4all.adapters import LoRASpec
from one4all.artifact import MANIFEST, TENSORS, load_artifact, save_artifact
from one4all.contract import IOSpec
from one4all.efficiency import directory_bytes
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2

NETWORK_CONFIG = {
    "_target_": "one4all.models.one4all.One4All",
    "patch_len": 8,
    "stride": 4,
    "init_seed": 5,
    "backbone": {"_target_": "one4all.models.backbones.gpt2.GPT2Spec", "init": "random", "n_layers": 2,
                 "seed": 11, "config": TINY_GPT2},
    "adapter": {"_target_": "one4all.adapters.lora.LoRASpec", "preset": "reference", "rank": 4},
}
IO = IOSpec(seq_len=48, n_channels=1, horizon=12)


def trained_network() -> One4All:
    net = One4All(IO, BackboneSpec(init="random", n_layers=2, seed=11, config=TINY_GPT2),
                  LoRASpec(preset="reference", rank=4), patch_len=8, stride=4, init_seed=5)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # stand-in for training: every trainable tensor moves off its init
        for p in net.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return net.eval()


@pytest.fixture()
def saved(tmp_path) -> tuple[Path, One4All]:
    net = trained_network()
    return save_artifact(tmp_path / "model", net, NETWORK_CONFIG, IO, extra={"precision": "32-true"}), net


@pytest.fixture()
def artifact(saved) -> Path:
    return saved[0]


def test_artifact_holds_only_trainable_tensors(artifact):
    from safetensors.torch import load_file

    tensors = load_file(str(artifact / TENSORS))
    assert tensors and all("lora_" in k for k in tensors)
    n_values = sum(t.numel() for t in tensors.values())
    assert n_values == 4 * (128 + 32) + 4 * (32 * 12 + 12)  # wpe + head adapters at r=4
    assert directory_bytes(artifact) < n_values * 4 + 20_000


def test_round_trip_in_a_fresh_process_is_bit_identical(saved, tmp_path):
    artifact, net = saved
    x = torch.randn(3, 48, 1, generator=torch.Generator().manual_seed(1))
    torch.save(x, tmp_path / "x.pt")
    expected = net(x)
    script = (
        "import sys, torch\n"
        "from one4all.artifact import load_artifact\n"
        f"net, _ = load_artifact({str(artifact)!r})\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True)\n"
        f"torch.save(net(x).detach(), {str(tmp_path / 'y.pt')!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parent.parent)
    got = torch.load(tmp_path / "y.pt", weights_only=True)
    assert torch.equal(got, expected.detach())


def test_regenerated_weights_must_match_checksum(artifact):
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["network"]["init_seed"] = 6  # frozen random head/patch embedding would differ
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="checksum mismatch"):
        load_artifact(artifact)


def test_manifest_names_registered_classes_in_plain_settings(artifact):
    network = json.loads((artifact / MANIFEST).read_text())["network"]
    assert network == {"type": "one4all", "patch_len": 8, "stride": 4, "init_seed": 5,
                       "backbone": {"type": "gpt2", "init": "random", "n_layers": 2, "seed": 11, "config": TINY_GPT2},
                       "adapter": {"type": "lora", "preset": "reference", "rank": 4}}


def test_corrupt_tensors_and_foreign_targets_are_refused(artifact):
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["network"]["_target_"] = "os.system"
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"unknown key network\._target_"):
        load_artifact(artifact)
    (artifact / TENSORS).write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="corrupt"):
        load_artifact(artifact)


def test_missing_or_wrong_version(tmp_path, artifact):
    with pytest.raises(UserError, match="no model artifact"):
        load_artifact(tmp_path / "nowhere")
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["version"] = 99
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="version"):
        load_artifact(artifact)
