"""Produce the parity fixtures of tests/test_parity.py by running the authors' own module definitions.

    python scripts/make_parity_fixtures.py --one-for-all ONE_FOR_ALL --gpt4ts GPT4TS --tslib TSLIB

Each argument is a local checkout; the fixtures in tests/fixtures/ were made from these commits:

| checkout | repository | commit |
|---|---|---|
| ONE_FOR_ALL | github.com/Prasanjit-Dey/One_for_All | 451296a1f24216085eac8cca8ac96caf84839054 |
| GPT4TS | github.com/DAMO-DI-ML/NeurIPS2023-One-Fits-All | 9f3875dbba9f52ee534ac0902572502746f3b29d |
| TSLIB | github.com/thuml/Time-Series-Library | 4e938a1767106324dd753b2a44832bf870a0252e |

Their code needs `einops` besides this project's packages (`pip install einops`, anywhere on
PYTHONPATH). Nothing of theirs is copied into this repository: the script imports their modules from
the checkouts, builds each network at a tiny size (a random 2-block, 32-wide GPT-2 where there is
one), and writes one safetensors file per network with

- `input.*`: the batch (seeded), and for TimesNet the dates (`input.dates_ns`) with the marks
  Time-Series-Library computes from them;
- `weight.<name>`: every parameter and persistent buffer, renamed to one4all's parameter names
  (LoRA matrices drawn at random so that the adapter path contributes);
- `output`: the forward in eval mode; `grad.<name>`: the gradients of the loss
  `(output * loss_weights).sum()` in train mode with every dropout at 0, for each parameter the
  authors' code trains (their `requires_grad`);
- metadata: the reference commit, the settings one4all must use to build the same network, and the
  authors' trainable parameter count (for the short-term network also at One-for-All's M4 Hourly
  script settings, with a random full-size GPT-2).

GPT-2 weights come from `GPT2Model.from_pretrained`, which the script replaces with a seeded random
GPT-2 of the tiny size. The authors' short-term forward pads its embeddings to a hard-coded width of
768 before GPT-2; with a 32-wide GPT-2 the script hands GPT-2 the first 32 features (the padding is
all zeros, so nothing is lost).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers import GPT2Config, GPT2Model

SEED = 2021
TINY_GPT2 = {"n_embd": 32, "n_head": 2, "n_layer": 2, "n_positions": 64}
FULL_GPT2 = {"n_layer": 6}  # GPT-2 small's architecture, first 6 blocks (random weights: only counted)
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
# Names of modules the reference checkouts share (`models`, `layers`, ...): purged between imports.
_SHARED_NAMES = ("models", "layers", "embed", "utils", "loralib")


@contextlib.contextmanager
def reference_code(root: Path, gpt2: dict | None = None):
    """Import from `root` (a task folder of a checkout), with `from_pretrained` giving a seeded
    random GPT-2 of size `gpt2`."""
    for name in [n for n in sys.modules if n.split(".")[0] in _SHARED_NAMES]:
        del sys.modules[name]
    # One-for-All's long-term module imports loralib without using it.
    sys.modules["loralib"] = types.ModuleType("loralib")
    original = GPT2Model.from_pretrained.__func__

    def random_gpt2(cls, *args, **kwargs):
        torch.manual_seed(SEED + 1)
        return GPT2Model(GPT2Config(**{**(gpt2 or TINY_GPT2), **NO_DROPOUT}))

    GPT2Model.from_pretrained = classmethod(random_gpt2)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        GPT2Model.from_pretrained = classmethod(original)


def commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def randomise_lora(model: nn.Module) -> None:
    """LoRA starts with one factor at zero; draw both so the adapter path changes the output."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.1)


def no_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def trainable_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def record(model: nn.Module, rename, run, inputs: dict[str, torch.Tensor], meta: dict, path: Path,
           merge=None) -> None:
    """Outputs (eval), gradients (train, no dropout) and renamed weights of `model` into `path`;
    `merge` regroups renamed tensors where one4all holds several of theirs in one."""
    model.eval()
    with torch.no_grad():
        output = run(model).detach().clone()
    no_dropout(model)
    model.train()
    loss_weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(SEED + 2))
    model.zero_grad()
    (run(model) * loss_weights).sum().backward()
    tensors = {f"input.{k}": v.contiguous() for k, v in inputs.items()}
    tensors.update({"output": output.contiguous(), "loss_weights": loss_weights})
    trainable = []
    for name, tensor in model.state_dict(keep_vars=True).items():
        ours = rename(name)
        if ours is None:
            continue
        tensors[f"weight.{ours}"] = tensor.detach().clone().contiguous()
        if isinstance(tensor, nn.Parameter) and tensor.requires_grad:
            trainable.append(ours)
            grad = torch.zeros_like(tensor) if tensor.grad is None else tensor.grad
            tensors[f"grad.{ours}"] = grad.detach().clone().contiguous()
    if merge is not None:
        tensors, trainable = merge(tensors), merge(dict.fromkeys(trainable))
    meta = {**meta, "trainable": sorted(trainable), "trainable_params": trainable_count(model), "seed": SEED}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"meta": json.dumps(meta)})
    print(f"{path}: {path.stat().st_size / 1024:.0f} kB, {meta['trainable_params']} trainable")


def _batch(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(SEED))


def _strip(prefix: str):
    def rename(name: str) -> str | None:
        name = name.removeprefix(prefix)
        # one4all keeps a 1-row token table: GPT-2's inputs are always embeddings.
        return None if name.endswith("wte.weight") else name
    return rename


def long_term(checkout: Path, out: Path, lora: bool) -> None:
    """One-for-All (`lora`) or GPT4TS long-term forecaster: patches -> GPT-2 -> flatten head."""
    folder = checkout / "Long-term_Forecasting"
    settings = {"seq_len": 32, "pred_len": 8, "patch_size": 8, "stride": 4, "n_channels": 2, "rank": 4}
    configs = SimpleNamespace(is_gpt=1, patch_size=settings["patch_size"], pretrain=1, stride=settings["stride"],
                              seq_len=settings["seq_len"], gpt_layers=2, d_model=TINY_GPT2["n_embd"],
                              pred_len=settings["pred_len"], freeze=1)
    with reference_code(folder):
        module = importlib.import_module("models.GPT2_rsLoRA" if lora else "models.GPT4TS")
        torch.manual_seed(SEED)
        cls = module.GPT2_rsLoRA if lora else module.GPT4TS
        model = cls(configs, torch.device("cpu"))
    if lora:
        # One-for-All's main.py: rsLoRA on wpe and out_layer over the whole model.
        config = LoraConfig(init_lora_weights="gaussian", use_rslora=True, r=settings["rank"], lora_alpha=16,
                            target_modules=["wpe", "out_layer"], lora_dropout=0.01, bias="none")
        model = get_peft_model(model, config)
        randomise_lora(model)
    x = _batch(4, settings["seq_len"], settings["n_channels"])
    name = "one4all_long_term" if lora else "gpt4ts_long_term"
    meta = {"reference": f"{'One_for_All' if lora else 'NeurIPS2023-One-Fits-All'}@{commit(checkout)}",
            "module": f"Long-term_Forecasting/models/{'GPT2_rsLoRA' if lora else 'GPT4TS'}.py", **settings,
            "gpt2": TINY_GPT2}
    record(model, _strip("base_model.model." if lora else ""), lambda m: m(x, 0), {"x": x}, meta,
           out / f"{name}.safetensors")


def short_term(checkout: Path, out: Path) -> None:
    """One-for-All's short-term (M4) network: per-step conv tokens, Linear(L, L+H), GPT-2, first d_ff."""
    folder = checkout / "Short-term_Forecasting"
    settings = {"seq_len": 16, "pred_len": 8, "d_ff": 16, "rank": 4, "n_channels": 1}

    def build(gpt2: dict, seq_len: int, pred_len: int, d_ff: int, rank: int) -> nn.Module:
        configs = SimpleNamespace(ln=0, task_name="short_term_forecast", pred_len=pred_len, seq_len=seq_len,
                                  patch_size=1, stride=1, d_ff=d_ff, enc_in=1, d_model=gpt2.get("n_embd", 768),
                                  embed="timeF", freq="h", dropout=0.1, rank=rank, gpt_layers=gpt2["n_layer"],
                                  use_gpu=False, mlp=0, c_out=1)
        with reference_code(folder, gpt2):
            module = importlib.import_module("models.GPT2_rsLoRA")
            torch.manual_seed(SEED)
            return module.Model(configs)

    # One-for-All's M4 Hourly script: d_model 768, d_ff 128, rank 16; 96 -> 48 (GPT-2 small, 6 blocks).
    full = trainable_count(build({**GPT2Config().to_dict(), **FULL_GPT2}, 96, 48, 128, 16))
    model = build(TINY_GPT2, settings["seq_len"], settings["pred_len"], settings["d_ff"], settings["rank"])
    randomise_lora(model)
    width = TINY_GPT2["n_embd"]
    # Their forward pads the embeddings to 768 features; GPT-2 here is `width` wide (see the module doc).
    model.gpt2.base_model.model.register_forward_pre_hook(
        lambda module, args, kwargs: (args, {**kwargs, "inputs_embeds": kwargs["inputs_embeds"][..., :width]}),
        with_kwargs=True)
    x = _batch(4, settings["seq_len"], 1).abs() + 1.0  # M4 values are positive

    def rename(name: str) -> str | None:
        name = name.replace("gpt2.base_model.model.", "gpt2.")
        for theirs, ours in (("enc_embedding.value_embedding.tokenConv.", "in_layer.conv."),
                             ("enc_embedding.temporal_embedding.embed.", "in_layer.unused_marks."),
                             ("predict_linear_pre.", "in_layer.extend."),
                             ("predict_linear.", "in_layer.unused_patch_linear."),
                             ("ln.", "layout.head_norm.")):
            if name.startswith(theirs):
                return ours + name[len(theirs):]
        if name.startswith("enc_embedding.position_embedding."):
            return None  # the sinusoidal table: one4all recomputes it
        return _strip("")(name)

    meta = {"reference": f"One_for_All@{commit(checkout)}", "module": "Short-term_Forecasting/models/GPT2_rsLoRA.py",
            **settings, "gpt2": TINY_GPT2, "m4_hourly_trainable_params": full}
    record(model, rename, lambda m: m(x, None, None, None), {"x": x}, meta, out / "one4all_short_term.safetensors")


def hourly_marks(features, starts: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dates (ns) of hourly windows from `starts`, and the timeF marks the reference computes for them."""
    stamps = [pd.date_range(s, periods=length, freq="h") for s in pd.to_datetime(starts)]
    marks = np.stack([features.time_features(s, freq="h").T for s in stamps]).astype(np.float32)
    return torch.from_numpy(np.stack([s.as_unit("ns").asi8 for s in stamps])), torch.from_numpy(marks)


def imputation(checkout: Path, out: Path) -> None:
    """GPT4TS's imputation network with the timeF marks its experiment passes."""
    settings = {"seq_len": 24, "n_channels": 3, "mask_ratio": 0.25}
    configs = SimpleNamespace(ln=0, task_name="imputation", pred_len=0, seq_len=settings["seq_len"], patch_size=1,
                              stride=1, d_ff=TINY_GPT2["n_embd"], enc_in=settings["n_channels"],
                              d_model=TINY_GPT2["n_embd"], embed="timeF", freq="h", dropout=0.1,
                              gpt_layers=TINY_GPT2["n_layer"], use_gpu=False, mlp=1, c_out=settings["n_channels"])
    with reference_code(checkout / "Imputation"):
        module = importlib.import_module("models.GPT4TS")
        features = importlib.import_module("utils.timefeatures")
        torch.manual_seed(SEED)
        model = module.Model(configs)
        dates, marks = hourly_marks(features, ["2016-07-01 00:00", "2017-03-12 09:00"], settings["seq_len"])
    y = _batch(2, settings["seq_len"], settings["n_channels"])
    mask = (torch.rand(y.shape, generator=torch.Generator().manual_seed(SEED + 3)) > settings["mask_ratio"]).float()
    x = y * mask  # their experiment zeroes the hidden entries before the forward

    def rename(name: str) -> str | None:
        for theirs, ours in (("enc_embedding.value_embedding.tokenConv.", "in_layer.conv."),
                             ("enc_embedding.temporal_embedding.embed.", "in_layer.marks."),
                             ("ln_proj.", "layout.head_norm.")):
            if name.startswith(theirs):
                return ours + name[len(theirs):]
        if name.startswith("enc_embedding.position_embedding."):
            return None
        return _strip("")(name)

    meta = {"reference": f"NeurIPS2023-One-Fits-All@{commit(checkout)}", "module": "Imputation/models/GPT4TS.py",
            "script": "Imputation/scripts/ETTh1.sh (--mlp 1: the MLP projections train too)", **settings,
            "gpt2": TINY_GPT2}
    record(model, rename, lambda m: m(x, marks, None, None, mask),
           {"x": x, "mask": mask, "marks": marks, "dates_ns": dates}, meta, out / "gpt4ts_imputation.safetensors")


def tslib_timesnet_name(name: str) -> str | None:
    """Time-Series-Library's TimesNet parameter name -> one4all's (None: not a one4all parameter).

    Inception kernel i's weight is one4all's `weights.i`; its bias becomes `biases.i`, which
    `stack_inception_biases` stacks into one tensor per block."""
    name = name.replace("enc_embedding.value_embedding.tokenConv.", "value_embedding.")
    name = name.replace("enc_embedding.temporal_embedding.embed.", "mark_embedding.")
    name = re.sub(r"^predict_linear\.", "extend.", re.sub(r"^model\.", "blocks.", name))
    if "temporal_embedding" in name or "position_embedding" in name:
        return None  # fixed sinusoidal tables: one4all recomputes them
    return re.sub(r"\.kernels\.(\d+)\.weight$", r".weights.\1", re.sub(r"\.kernels\.(\d+)\.bias$",
                                                                       r".biases.\1", name))


def stack_inception_biases(tensors: dict) -> dict:
    """Stack each Inception block's per-kernel biases (`....biases.i`) into one4all's
    `biases[n_kernels, out]`; a group whose entries are None (names only) stays None."""
    out, stacks = {}, {}
    for key, value in tensors.items():
        found = re.fullmatch(r"(.*\.biases)\.(\d+)", key)
        if found:
            stacks.setdefault(found.group(1), {})[int(found.group(2))] = value
        else:
            out[key] = value
    for key, parts in stacks.items():
        out[key] = None if parts[0] is None else torch.stack([parts[i] for i in sorted(parts)])
    return out


def timesnet(checkout: Path, out: Path, embed: str) -> None:
    """Time-Series-Library's TimesNet forecaster with time-feature marks (`embed`: timeF or fixed)."""
    settings = {"seq_len": 24, "pred_len": 12, "n_channels": 3, "d_model": 8, "d_ff": 8, "n_layers": 1,
                "top_k": 2, "n_kernels": 2}
    configs = SimpleNamespace(task_name="long_term_forecast", seq_len=settings["seq_len"], label_len=0,
                              pred_len=settings["pred_len"], e_layers=settings["n_layers"],
                              enc_in=settings["n_channels"], c_out=settings["n_channels"],
                              d_model=settings["d_model"], d_ff=settings["d_ff"], embed=embed, freq="h",
                              dropout=0.1, top_k=settings["top_k"], num_kernels=settings["n_kernels"])
    with reference_code(checkout):
        model_module = importlib.import_module("models.TimesNet")
        features = importlib.import_module("utils.timefeatures")
        torch.manual_seed(SEED)
        model = model_module.Model(configs)
        # Hourly dates from a few starts across the year; each sample's marks are those of its window.
        starts = pd.to_datetime(["2016-07-01 00:00", "2016-12-31 17:00", "2017-02-28 05:00", "2017-10-15 23:00"])
        stamps = [pd.date_range(s, periods=settings["seq_len"], freq="h") for s in starts]
        if embed == "timeF":
            marks = np.stack([features.time_features(s, freq="h").T for s in stamps])
        else:  # Time-Series-Library's timeenc=0 columns for hourly data
            marks = np.stack([np.stack([s.month, s.day, s.day_of_week, s.hour], axis=1) for s in stamps])
    dates = torch.from_numpy(np.stack([s.as_unit("ns").asi8 for s in stamps]))
    x = _batch(len(starts), settings["seq_len"], settings["n_channels"])
    marks = torch.from_numpy(marks.astype(np.float32))

    def run(m: nn.Module) -> torch.Tensor:
        return m(x, marks, None, None)[:, -settings["pred_len"]:]

    meta = {"reference": f"Time-Series-Library@{commit(checkout)}", "module": "models/TimesNet.py",
            "time_features": embed, **settings}
    record(model, tslib_timesnet_name, run, {"x": x, "marks": marks, "dates_ns": dates}, meta,
           out / f"tslib_timesnet_{embed}.safetensors", stack_inception_biases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one-for-all", type=Path, required=True, help="checkout of Prasanjit-Dey/One_for_All")
    parser.add_argument("--gpt4ts", type=Path, required=True, help="checkout of DAMO-DI-ML/NeurIPS2023-One-Fits-All")
    parser.add_argument("--tslib", type=Path, required=True, help="checkout of thuml/Time-Series-Library")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "fixtures")
    args = parser.parse_args()
    long_term(args.one_for_all, args.out, lora=True)
    long_term(args.gpt4ts, args.out, lora=False)
    imputation(args.gpt4ts, args.out)
    short_term(args.one_for_all, args.out)
    timesnet(args.tslib, args.out, "timeF")
    timesnet(args.tslib, args.out, "fixed")


if __name__ == "__main__":
    main()
