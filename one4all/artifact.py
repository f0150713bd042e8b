"""The model artifact: trainable tensors (safetensors) + a JSON manifest. No pickle anywhere.

Frozen tensors are not stored, except learned ones that were frozen later (what the network's
`stored_frozen()` names, e.g. modules an adaptation method switched to LoRA during training).
GPT-2 comes from its source (hub id / directory, or a seed for a random-init backbone); frozen
random parts that are not GPT-2 (the `reference` preset's patch embedding and head base weight)
are regenerated from their stored seed. Both are verified against stored SHA-256 checksums, so a
different GPT-2 or a torch version whose RNG differs fails loudly instead of predicting garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from one4all.atomic import atomic_write_text, umask_mode
from one4all.config import build_object
from one4all.contract import IOSpec, Network
from one4all.errors import UserError

FORMAT = "one4all-artifact"
VERSION = 1
MANIFEST = "model.json"
TENSORS = "trainable.safetensors"


def frozen_checksums(network: Network) -> dict[str, str]:
    """SHA-256 over frozen parameters, split into the backbone (GPT-2, ...) and everything else."""
    digests = {"backbone": hashlib.sha256(), "other": hashlib.sha256()}
    stored = network.stored_frozen()
    backbone = f"{network.backbone_prefix}." if network.backbone_prefix else None
    for name, param in sorted(network.named_parameters()):
        if param.requires_grad or name in stored:
            continue
        group = "backbone" if backbone and name.startswith(backbone) else "other"
        digests[group].update(name.encode())
        digests[group].update(param.detach().float().contiguous().cpu().numpy().tobytes())
    return {k: v.hexdigest() for k, v in digests.items()}


def trainable_tensors(network: Network) -> dict[str, torch.Tensor]:
    """Trainable parameters, persistent buffers and frozen-but-learned weights (`stored_frozen`):
    everything a fresh network cannot regenerate."""
    frozen = {name for name, p in network.named_parameters() if not p.requires_grad} - network.stored_frozen()
    return {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items() if k not in frozen}


def save_artifact(directory: str | Path, network: Network, network_config: dict, io: IOSpec,
                  extra: dict[str, Any]) -> Path:
    """Write the artifact into `directory` (created; replaced atomically if it exists)."""
    directory = Path(directory)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    os.chmod(staging, umask_mode(0o777))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "torch_version": torch.__version__,
        "network": network_config,
        "io": io.as_dict(),
        "frozen_sha256": frozen_checksums(network),
        **extra,
    }
    save_file(trainable_tensors(network), str(staging / TENSORS))
    atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2, default=str))
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        # Left behind if a previous replacement was killed between its two renames.
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old)
    else:
        os.replace(staging, directory)
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest, validated for format and version."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(f"no model artifact at {directory} ({MANIFEST} missing); pass a run directory's model/ "
                        "folder or a run directory from `one4all train`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"corrupt artifact manifest {path}: {err}; retrain or restore the file") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a one4all artifact; pass the model/ folder written by `one4all train`")
    if manifest.get("version") != VERSION:
        raise UserError(f"artifact version {manifest.get('version')} is not supported by this one4all "
                        f"(expects {VERSION}); retrain the model with this version")
    _check_targets(manifest["network"])
    return manifest


def _check_targets(node: Any) -> None:
    # A manifest is data: it may only name one4all's own classes, never arbitrary callables.
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not str(target).startswith("one4all."):
            raise UserError(f"artifact names a foreign class {target!r}; refusing to load it")
        for value in node.values():
            _check_targets(value)
    elif isinstance(node, list):
        for value in node:
            _check_targets(value)


def load_artifact(directory: str | Path, backbone_path: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the network from an artifact: regenerate, verify, then load trainable tensors."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    config = json.loads(json.dumps(manifest["network"]))
    if backbone_path is not None and "backbone" in config:
        config["backbone"]["path"] = backbone_path
        if "package" in config["backbone"]:  # the given weights replace a weights package (models.backbones.bert)
            config["backbone"]["package"] = None
    network = build_object(config, io=IOSpec(**manifest["io"]))
    network.eval()
    sums = frozen_checksums(network)
    for group, expected in manifest["frozen_sha256"].items():
        if sums.get(group) != expected:
            what = "backbone weights" if group == "backbone" else "regenerated frozen random weights"
            raise UserError(
                f"{what} differ from the ones this model was trained with (checksum mismatch; trained with "
                f"torch {manifest['torch_version']}, running torch {torch.__version__}); use the same "
                "backbone weights and torch version as training")
    try:
        tensors = load_file(str(directory / TENSORS))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"corrupt or missing {directory / TENSORS}: {err}; retrain or restore the file") from err
    missing = sorted(set(trainable_tensors(network)) - set(tensors))
    unexpected = sorted(set(tensors) - set(network.state_dict()))
    if missing or unexpected:
        raise UserError(f"artifact tensors do not match the network (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}); the artifact is from an incompatible version, retrain it")
    try:
        network.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # shape mismatch: tensors and manifest disagree
        first = str(err).splitlines()[-1].strip()
        raise UserError(f"artifact tensors do not fit the network ({first}); the artifact is corrupt or from an "
                        "incompatible version, retrain it") from err
    return network, manifest
