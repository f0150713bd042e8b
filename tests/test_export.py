"""`one4all export`: merged graph, packages that run without one4all, int8/bf16/ONNX, bad input refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft.tuners.tuners_utils import BaseTunerLayer

from one4all import deploy
from one4all.cli import main
from one4all.data.formats.timestamps import future_dates
from one4all.errors import UserError
from one4all.export.graph import build_graph, dense
from one4all.export.package import calendar_step
from one4all.forecast import ForecastModel
from one4all.lowrank.factorised import FactorisedConv1D
from tests.conftest import TINY_OVERRIDES

SEQ_LEN, HORIZON = 48, 24
ALL_LORA = "adapter.lora_targets=[wpe,head,patch_embedding,c_attn,attn_proj,mlp_fc,mlp_proj]"
# What a device lacks: the check blocks these imports; pandas too, since predict.py reads CSVs itself.
BLOCKED = ("one4all", "lightning", "pytorch_lightning", "hydra", "omegaconf", "transformers", "peft", "pandas")


@pytest.fixture(scope="module")
def etth1(data_root) -> Path:
    return data_root / "ETTh1" / "ETTh1.csv"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, etth1) -> Path:
    """A tiny multivariate (M: 7 channels) run with LoRA on every part that can take it."""
    run = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", "data=csv", f"data.path={etth1}", *TINY_OVERRIDES, f"task.seq_len={SEQ_LEN}",
                 f"task.horizon={HORIZON}", "trainer.max_steps=2", "trainer.limit_val_batches=1",
                 "++trainer.limit_test_batches=1", ALL_LORA, f"hydra.run.dir={run}"]) == 0
    return run


@pytest.fixture(scope="module")
def block_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("blocked")
    for name in BLOCKED:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(f"raise ImportError('blocked: {name}')\n")
    return root


def export(run: Path, out: Path, *extra: str) -> int:
    return main(["export", "--run", str(run), "--out", str(out), *extra])


def predict(package: Path, csv: Path, out: Path, block_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the package's predict.py in a fresh interpreter that cannot import one4all & co."""
    env = {**os.environ, "PYTHONPATH": str(block_dir)}
    return subprocess.run([sys.executable, str(package / "predict.py"), "--csv", str(csv), "--out", str(out), *extra],
                          cwd=package.parent, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def reference(run_dir, etth1, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    assert main(["forecast", "--run", str(run_dir), "--csv", str(etth1), "--out", str(out)]) == 0
    return pd.read_csv(out)


@pytest.fixture(scope="module")
def fp32(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "fp32"
    assert export(run_dir, out) == 0
    return out


def scaled_diff(a: pd.DataFrame, b: pd.DataFrame, run_dir: Path) -> float:
    """Max abs difference of two forecasts in scaled units (divided by the training std per channel)."""
    scaler = ForecastModel.load(run_dir).schema["scaler"]
    std = np.asarray(scaler["std"])
    return float((np.abs(a.iloc[:, 1:].to_numpy() - b.iloc[:, 1:].to_numpy()) / std).max())


def test_blocked_imports_really_block(block_dir):
    env = {**os.environ, "PYTHONPATH": str(block_dir)}
    for name in ("one4all", "pandas", "transformers"):
        done = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True,
                              cwd=block_dir)  # not the checkout: `python -c` puts the cwd first on sys.path
        assert done.returncode == 1 and f"blocked: {name}" in done.stderr


def test_predict_py_without_one4all_matches_one4all_forecast(fp32, run_dir, etth1, reference, block_dir, tmp_path):
    assert sorted(p.name for p in fp32.iterdir()) == ["model.pt", "package.json", "predict.py"]
    done = predict(fp32, etth1, tmp_path / "f.csv", block_dir)
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(tmp_path / "f.csv")
    assert list(got.columns) == list(reference.columns) == ["date", *pd.read_csv(etth1, nrows=1).columns[1:]]
    # Same date text as one4all forecast: the hour after ETTh1's last row 2018-06-26 19:00.
    assert got["date"].tolist() == reference["date"].tolist()
    assert got["date"].iloc[0] == "2018-06-26 20:00:00" and len(got) == HORIZON
    assert scaled_diff(got, reference, run_dir) <= 1e-4
    assert "ignoring" not in done.stderr and done.stdout.startswith("forecast: 24 steps")


def test_graph_merges_lora_into_dense_weights(run_dir):
    model = ForecastModel.load(run_dir)
    network = model.network
    # LoRA's B starts at zero and two steps barely move it: give every adapter a real delta.
    with torch.no_grad():
        for name, param in network.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                param.copy_(torch.randn_like(param) * 0.2)
    x = torch.randn(5, SEQ_LEN, 1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = network(x)
    lora = [m for m in network.modules() if isinstance(m, BaseTunerLayer)]
    assert len(lora) == 1 + 1 + 1 + 4 * 2  # wpe, head, patch embedding, 4 projections x 2 blocks
    graph = build_graph(network)
    with torch.no_grad():
        after = graph(x)
    assert not any(isinstance(m, BaseTunerLayer) for m in graph.modules())
    assert not [n for n, _ in graph.named_parameters() if "lora" in n]
    assert len(graph.blocks) == 2 and graph.positions.shape == (network.n_patches, 32)
    assert float((before - after).abs().max()) < 1e-5
    # The merge moved the base weights: the merged head is no longer the frozen seeded one.
    with torch.no_grad():
        fresh = ForecastModel.load(run_dir).network.out_layer.base_layer.weight
    assert float((graph.out_layer.weight - fresh).abs().max()) > 1e-3


def test_dense_matrix_of_any_affine_projection():
    weight, bias = torch.randn(32, 96), torch.randn(96)
    factorised = FactorisedConv1D(weight, bias, ranks=[4, None, 8])  # Q, K, V: factor pair, dense, factor pair
    x = torch.randn(7, 32)
    with torch.no_grad():
        linear = dense(factorised, 32)
        assert linear.weight.shape == (96, 32)
        assert float((linear(x) - factorised(x)).abs().max()) < 1e-5
        # The dense slice is exactly the original columns; the factor pairs are low-rank approximations.
        assert torch.allclose(linear.weight[32:64], weight[:, 32:64].T, atol=1e-6)  # to the bias add's rounding


def test_int8_and_bf16_packages(run_dir, fp32, etth1, reference, block_dir, tmp_path):
    sizes = {"fp32": (fp32 / "model.pt").stat().st_size}
    for name, flags in (("int8", ["--quantize", "int8"]), ("bf16", ["--dtype", "bf16"])):
        assert export(run_dir, tmp_path / name, *flags) == 0
        schema = json.loads((tmp_path / name / "package.json").read_text())
        assert (schema["quantize"], schema["dtype"]) == (("int8", "fp32") if name == "int8" else (None, "bf16"))
        sizes[name] = (tmp_path / name / "model.pt").stat().st_size
        done = predict(tmp_path / name, etth1, tmp_path / f"{name}.csv", block_dir)
        assert done.returncode == 0, done.stderr
        diff = scaled_diff(pd.read_csv(tmp_path / f"{name}.csv"), reference, run_dir)
        assert 1e-5 < diff < 0.1, diff  # really lower precision, still the same forecast
    # A 32-wide model is mostly LayerNorms and biases, so int8 gains less than the 4x of large layers.
    assert sizes["int8"] < 0.75 * sizes["fp32"] and sizes["bf16"] < 0.75 * sizes["fp32"]


def test_onnx_packages(run_dir, etth1, reference, block_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    for name, flags in (("onnx", []), ("onnx8", ["--quantize", "int8"])):
        assert export(run_dir, tmp_path / name, "--format", "onnx", *flags) == 0
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["model.onnx", "package.json", "predict.py"]
        done = predict(tmp_path / name, etth1, tmp_path / f"{name}.csv", block_dir, "--threads", "1")
        assert done.returncode == 0, done.stderr
        diff = scaled_diff(pd.read_csv(tmp_path / f"{name}.csv"), reference, run_dir)
        assert diff <= 1e-4 if name == "onnx" else 1e-5 < diff < 0.1, diff


def test_missing_values_and_horizon_as_one4all_forecast(fp32, run_dir, etth1, tmp_path, capsys):
    frame = pd.read_csv(etth1).iloc[-200:].copy()
    frame.loc[frame.index[-5:-2], "OT"] = np.nan  # a 3-step gap inside the window: interpolated
    frame["note"] = "x"
    frame.to_csv(tmp_path / "gappy.csv", index=False)
    assert main(["forecast", "--run", str(run_dir), "--csv", str(tmp_path / "gappy.csv"), "--out",
                 str(tmp_path / "ref.csv"), "--horizon", "6"]) == 0
    # In process (deploy.py is predict.py): the subprocess tests above show it needs no one4all.
    assert deploy.main(["--csv", str(tmp_path / "gappy.csv"), "--out", str(tmp_path / "f.csv"), "--horizon", "6",
                        "--package", str(fp32)]) == 0
    assert "ignoring columns not seen in training: note" in capsys.readouterr().err
    got, ref = pd.read_csv(tmp_path / "f.csv"), pd.read_csv(tmp_path / "ref.csv")
    assert len(got) == 6 and got["date"].tolist() == ref["date"].tolist()
    assert scaled_diff(got, ref, run_dir) <= 1e-4


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["OT"]), "lacks column(s) ['OT']"),
    (lambda f: f.iloc[-10:], "has 10 rows; the model needs at least its seq_len=48"),
    (lambda f: f.drop(index=f.index[-20]), "frequency h: data row 181"),
    (lambda f: f.assign(OT=f["OT"].astype(object).where(np.arange(len(f)) != 100, "n/a?")),
     "non-numeric value 'n/a?' at data row 101"),
    (lambda f: f.assign(date="31.12.2017"), "unparseable timestamp '31.12.2017' in column 'date' at data row 1"),
])
def test_predict_py_bad_input_is_one_line(fp32, etth1, tmp_path, capsys, change, message):
    change(pd.read_csv(etth1).iloc[-200:]).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "out.csv").write_text("keep me\n")
    assert deploy.main(["--csv", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "out.csv"),
                        "--package", str(fp32)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert (tmp_path / "out.csv").read_text() == "keep me\n"  # nothing pre-existing lost


def test_export_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys):
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "keep.txt").write_text("mine")
    # A run whose model is not a forecaster (the manifest of a reconstruction model).
    recon = tmp_path / "recon" / "model"
    recon.mkdir(parents=True)
    for f in (run_dir / "model").iterdir():
        (recon / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((recon / "model.json").read_text())
    manifest["io"]["kind"] = "reconstruct"
    (recon / "model.json").write_text(json.dumps(manifest))
    cases = [
        ([str(tmp_path / "nope")], "run directory not found"),
        ([str(tmp_path / "exists")], "no model artifact"),
        ([str(recon.parent)], "is a 'reconstruct' model, not a forecaster"),
        ([str(run_dir), "--format", "tflite"], "--format 'tflite' is not supported"),
        ([str(run_dir), "--format", "onnx", "--dtype", "bf16"], "--dtype bf16 is not supported for ONNX"),
        ([str(run_dir), "--quantize", "int4"], "--quantize 'int4' is not supported"),
        ([str(run_dir), "--quantize", "int8", "--dtype", "fp16"], "drop --dtype fp16"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(["export", "--run", *args, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()
    assert export(run_dir, tmp_path / "exists") == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "exists").iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("freq", ["h", "15min", "30s", "D", "3D", "W-SUN", "MS", "ME", "QS-JAN", "QE-DEC", "YS",
                                  "YE", "B"])
@pytest.mark.parametrize("zone", [None, "UTC", "+10:00"])
def test_future_dates_with_the_standard_library_as_pandas(freq, zone):
    stamps = pd.date_range("2023-01-02 00:00", periods=5, freq=freq, tz=zone)
    step = deploy.Step(**calendar_step(freq))
    last = datetime.fromisoformat(str(stamps[-1]))
    ours = deploy.format_dates([step.after(last, i + 1) for i in range(30)])
    theirs = pd.DataFrame({"date": future_dates(stamps[-1], freq, 30)}).to_csv(index=False).split("\n")[1:-1]
    assert ours == theirs


def test_unsupported_frequency_and_malformed_package(fp32, tmp_path):
    with pytest.raises(UserError, match="frequency SMS is not supported by the export"):
        calendar_step("SMS")
    schema = json.loads((fp32 / "package.json").read_text())
    for key, value, message in (("runtime", "pickle", "names runtime 'pickle'"),
                                ("model_file", "../model.pt", "must be a file name inside the package"),
                                ("seq_len", "48", "field 'seq_len' is missing or malformed"),
                                ("version", 2, "export version 2 is not supported"),
                                ("target_channels", [9], "target_channels [9] do not index its 7 columns"),
                                ("step", {"unit": "months", "n": "x"}, "is malformed (invalid literal")):
        folder = tmp_path / key
        folder.mkdir()
        (folder / "model.pt").write_bytes((fp32 / "model.pt").read_bytes())
        (folder / "package.json").write_text(json.dumps({**schema, key: value}))
        with pytest.raises(deploy.DeployError, match=re.escape(message)):
            deploy.Package.load(folder)
