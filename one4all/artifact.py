"""The model artifact: trainable tensors (safetensors) + a JSON manifest. No pickle anywhere.

Frozen tensors are not stored, except learned ones that were frozen later (what the network's
`stored_frozen()` names, e.g. modules an adaptation method switched to LoRA during training).
GPT-2 comes from its source (hub id / directory, or a seed for a random-init backbone); frozen
random parts that are not GPT-2 (the `reference` preset's patch embedding and head base weight)
are regenerated from their stored seed. Both are verified against stored SHA-256 checksums, so a
different GPT-2 or a torch version whose RNG differs fails loudly instead of predicting garbage.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from one4all.atomic import atomic_write_bytes, atomic_write_text, umask_mode
from one4all.contract import IOSpec, Network
from one4all.errors import UserError, write_error
from one4all.models.spec import build, to_spec
from one4all.schema import checked_object, first_line, shown

FORMAT = "one4all-artifact"
# 2: the network is a spec of registered names and plain settings (models.spec); 1 named Python classes.
VERSION = 2
MANIFEST = "model.json"
TENSORS = "trainable.safetensors"
# A manifest is a few kB; anything far larger is not one, and is refused before it is parsed.
MAX_MANIFEST_BYTES = 1 << 24


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


def stored_names(network: Network) -> set[str]:
    """State-dict keys an artifact stores: trainable parameters, persistent buffers and frozen-but-learned
    weights (`stored_frozen`), i.e. everything a fresh network cannot regenerate."""
    frozen = {name for name, p in network.named_parameters() if not p.requires_grad} - network.stored_frozen()
    return set(network.state_dict()) - frozen


def trainable_tensors(network: Network) -> dict[str, torch.Tensor]:
    """The tensors of `stored_names`, on the CPU."""
    names = stored_names(network)
    return {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items() if k in names}


def save_artifact(directory: str | Path, network: Network, network_config: Mapping[str, Any], io: IOSpec,
                  extra: dict[str, Any]) -> Path:
    """Write the artifact into `directory` (created; replaced atomically if it exists).

    `network_config`: the model config (`_target_` nodes) or the spec of a loaded artifact; it is
    stored as a spec (models.spec), so the manifest names registered classes only. A failed write
    leaves `directory` as it was.
    """
    directory = Path(directory)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "torch_version": torch.__version__,
        "network": to_spec(network_config),
        "io": io.as_dict(),
        "frozen_sha256": frozen_checksums(network),
        **extra,
    }
    tensors = save(trainable_tensors(network))
    staging = None
    try:
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        os.chmod(staging, umask_mode(0o777))
        atomic_write_bytes(staging / TENSORS, tensors)
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2, default=str))
        _replace_directory(staging, directory)
    except OSError as err:
        raise write_error(err, f"the model artifact {directory}", "nothing of it was written") from err
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def _replace_directory(staging: Path, directory: Path) -> None:
    """Rename `staging` onto `directory`; an existing one is swapped out, and back in if the swap fails."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    old = directory.with_name(f".{directory.name}.old")
    # Left behind if a previous replacement was killed between its two renames.
    shutil.rmtree(old, ignore_errors=True)
    os.replace(directory, old)
    try:
        os.replace(staging, directory)
    except OSError:
        os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest, validated for format, version and the types of its top-level entries.

    The network and io entries are checked in depth when the network is rebuilt (`load_artifact`);
    other entries (the data schema of a forecaster, ...) by whoever reads them.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(f"no model artifact at {directory} ({MANIFEST} missing); pass a run directory's model/ "
                        "folder or a run directory from `one4all train`")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UserError(f"{path} is {path.stat().st_size} bytes, far more than a manifest holds; the file is not a "
                        "one4all manifest: retrain or restore it")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise UserError(f"corrupt artifact manifest {path}: {first_line(err)}; retrain or restore the file") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a one4all artifact; pass the model/ folder written by `one4all train`")
    version = manifest.get("version")
    if version == 1:
        raise UserError(f"{path} is an artifact of version 1, whose manifests named Python classes; this one4all "
                        f"loads only version {VERSION} (plain data): retrain the model with this version")
    if version != VERSION:
        raise UserError(f"artifact version {shown(version)} is not supported by this one4all (expects {VERSION}); "
                        "retrain the model with this version")
    for key, kind in (("network", dict), ("io", dict), ("frozen_sha256", dict), ("torch_version", str)):
        if not isinstance(manifest.get(key), kind):
            raise UserError(f"corrupt artifact manifest {path}: '{key}' is missing or not a {kind.__name__}; "
                            "retrain or restore the file")
    return manifest


def stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in a safetensors file, from its header (no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"corrupt or missing {path}: {first_line(err)}; retrain or restore the file") from err


def check_stored(network: Network, shapes: dict[str, tuple[int, ...]]) -> None:
    """The tensors `network` loads must be exactly the stored ones, with the same shapes."""
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items() if k in stored_names(network)}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise UserError(f"the stored tensors do not match the network (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]})")
    wrong = [k for k in sorted(expected) if expected[k] != shapes[k]]
    if wrong:
        raise UserError(f"the stored tensors do not fit the network ({wrong[0]}: stored {list(shapes[wrong[0]])}, "
                        f"the manifest implies {list(expected[wrong[0]])})")


def load_artifact(directory: str | Path, backbone_path: str | None = None) -> tuple[Network, dict]:
    """Rebuild the network from an artifact: check the manifest, regenerate, verify, then load trainable tensors.

    Nothing in the files is executed or imported: the network comes from a registered class and
    checked plain settings (models.spec), the tensors from safetensors.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = copy.deepcopy(manifest["network"])
    if backbone_path is not None and isinstance(spec.get("backbone"), dict):
        spec["backbone"]["path"] = backbone_path
        if "package" in spec["backbone"]:  # the given weights replace a weights package (models.backbones.bert)
            spec["backbone"]["package"] = None
    shapes = stored_shapes(directory / TENSORS)
    try:
        io = checked_object(IOSpec, "io", manifest["io"])
        network = build(spec, io, verify=lambda dry: check_stored(dry, shapes))
    except UserError as err:
        raise UserError(f"refusing the model in {directory}: {err}; the artifact was edited, is corrupt or is "
                        "from an incompatible version: retrain or restore it") from None
    network.eval()
    sums = frozen_checksums(network)
    for group, expected in manifest["frozen_sha256"].items():
        if sums.get(group) != expected:
            what = "backbone weights" if group == "backbone" else "regenerated frozen random weights"
            raise UserError(
                f"{what} differ from the ones this model was trained with (checksum mismatch; trained with "
                f"torch {shown(manifest['torch_version'])}, running torch {torch.__version__}); use the same "
                "backbone weights and torch version as training")
    try:
        tensors = load_file(str(directory / TENSORS))
        network.load_state_dict(tensors, strict=False)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"corrupt or missing {directory / TENSORS}: {first_line(err)}; retrain or restore the "
                        "file") from err
    return network, manifest
