"""Untrusted input: a run folder is data, not code, and every bad input is one line (exit 2, nothing written).

Table-driven: each case is a name -> (input, words the error line must hold). Every refused case
asserts exit 2, exactly one line on stderr starting with `error: `, no exception escaping `main`
(so no traceback), and no file created or changed under the test's folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from one4all.artifact import MANIFEST, TENSORS, load_artifact
from one4all.atomic import probe_writable
from one4all.cli import main
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parent.parent


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def assert_refused(capsys, argv: list[str], folder: Path, words: str) -> str:
    before = snapshot(folder)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err
    assert snapshot(folder) == before, "a refused command wrote or changed files"
    return err


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    t = pd.date_range("2024-01-01", periods=600, freq="h")
    r = np.random.default_rng(0)
    frame = pd.DataFrame({"date": t, "sales": np.sin(np.arange(600) / 12) + 0.1 * r.standard_normal(600),
                          "price": r.random(600)})
    frame.to_csv(folder / "good.csv", index=False)
    return folder / "good.csv"


def train_args(csv: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "data=csv", f"data.path={csv}", "data.target=sales", "task.seq_len=24", "task.horizon=8",
            *TINY_OVERRIDES, "trainer.max_steps=2", f"hydra.run.dir={run}", *extra]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, good_csv) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_args(good_csv, run)) == 0
    return run


# ---- section 2: wrong types and values on the command line -------------------------------------

CONFIG_CASES = {
    "max_steps not a number": ("trainer.max_steps=abc", "trainer.max_steps='abc' is invalid: expected -1"),
    "horizon not a number": ("task.horizon=abc", "task.horizon='abc' is invalid"),
    "seed not a number": ("seed=abc", "seed='abc' is invalid: expected an integer in 0..4294967295"),
    "seed out of range": ("seed=-1", "seed=-1 is invalid"),
    "lr not a number": ("task.module.optimizer.lr=abc",
                        "task.module.optimizer.lr='abc' is invalid: expected a finite number"),
    "lr negative": ("task.module.optimizer.lr=-1", "task.module.optimizer (Adam) refuses its settings: Invalid"),
    "unknown precision": ("trainer.precision=banana", "trainer.precision='banana' is invalid: expected one of auto"),
    "zero devices": ("trainer.devices=0", "trainer.devices=0 is invalid"),
    "zero batch size": ("data.batch_size=0", "data.batch_size=0 is invalid: expected a positive integer"),
    "negative batch size": ("data.batch_size=-1", "data.batch_size=-1 is invalid"),
    "negative workers": ("data.num_workers=-1", "data.num_workers=-1 is invalid"),
    "zero horizon": ("task.horizon=0", "task.horizon=0 is invalid: expected a positive number of time steps"),
    "negative horizon": ("task.horizon=-3", "task.horizon=-3 is invalid"),
    "zero seq_len": ("task.seq_len=0", "task.seq_len=0 is invalid"),
    "negative seq_len": ("task.seq_len=-5", "task.seq_len=-5 is invalid"),
    "seq_len shorter than a patch": ("task.seq_len=8", "task.seq_len=8 is shorter than one patch (model.patch_len=16)"),
    "zero patch": ("model.patch_len=0", "model.patch_len=0; use a positive integer"),
    "no GPT-2 blocks": ("model.backbone.n_layers=0", "model.backbone.n_layers=0; use 1..48"),
    "negative GPT-2 blocks": ("model.backbone.n_layers=-2", "model.backbone.n_layers=-2; use 1..48"),
    "attention kernel from the hub": ("model.backbone.attn_implementation=kernels-community/flash-attn",
                                      "model.backbone.attn_implementation='kernels-community/flash-attn'; use"),
    "unknown GPT-2 setting": ("+model.backbone.config.auto_map=x", "model.backbone.config.auto_map is not a GPT-2"),
    "heads do not divide width": ("model.backbone.config.n_head=3", "must be divisible by num_heads"),
    "patience not a number": ("callbacks.early_stopping.patience=abc", "callbacks.early_stopping.patience='abc'"),
    "missing environment variable": ("data.path=${oc.env:ONE4ALL_NO_SUCH_VARIABLE}",
                                     "cannot resolve data.path: KeyError raised while resolving interpolation"),
    "append an existing key": ("+seed=3", "An item is already at 'seed'"),
    "unknown key": ("+model.nonsense=1", "unknown key model.nonsense for one4all.models.one4all.One4All"),
    "no such package": ("data.path=pkg://one4all_no_such_package/x.csv", "no installed package"),
    "zero val interval": ("trainer.val_check_interval=0", "trainer.val_check_interval=0 is invalid"),
    "gpu on a cpu machine": ("trainer.accelerator=gpu", "trainer.accelerator='gpu' is invalid"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_setting_is_one_line_and_no_run(case, good_csv, tmp_path, capsys):
    override, words = CONFIG_CASES[case]
    if case == "gpu on a cpu machine" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = tmp_path / "run"
    assert_refused(capsys, train_args(good_csv, run, override), tmp_path, words)
    assert not run.exists()


BACKTEST_CASES = {
    "horizon not a number": ("task.horizon=abc", "task.horizon='abc' is invalid: expected a positive number"),
    "zero horizon": ("task.horizon=0", "task.horizon=0 is invalid"),
    "missing environment variable": ("data.path=${oc.env:ONE4ALL_NO_SUCH_VARIABLE}",
                                     "cannot resolve data.path: KeyError raised while resolving interpolation"),
    "seed not a number": ("seed=abc", "seed='abc' is invalid"),
}


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory) -> Path:
    """Two hourly series of 120 steps in long format (unique_id, ds, y)."""
    path = tmp_path_factory.mktemp("long") / "long.csv"
    stamps = pd.date_range("2024-01-01", periods=120, freq="h")
    pd.DataFrame({"unique_id": np.repeat(["a", "b"], 120), "ds": np.tile(stamps, 2),
                  "y": np.sin(np.arange(240) / 12)}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case", list(BACKTEST_CASES))
def test_bad_backtest_setting_is_one_line_and_no_run(case, long_csv, tmp_path, capsys):
    # `one4all backtest` reads the train config before its folds train: the same validation runs first.
    override, words = BACKTEST_CASES[case]
    run = tmp_path / "run"
    args = ["backtest", "data=long", f"data.path={long_csv}", "task.seq_len=24", *TINY_OVERRIDES,
            "trainer.max_steps=2", "backtest.n_windows=2", f"hydra.run.dir={run}", override]
    assert_refused(capsys, args, tmp_path, words)
    assert not run.exists()


def test_filesystem_and_checkpoint_faults_before_training(good_csv, run_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    assert_refused(capsys, train_args(good_csv, tmp_path / "a_file" / "run"), tmp_path,
                   f"{tmp_path / 'a_file'} is a file, not a folder")
    assert_refused(capsys, train_args(good_csv, tmp_path / "run", f"ckpt_path={good_csv}"), tmp_path,
                   "is not a readable training checkpoint (not a torch checkpoint archive")
    whole = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    truncated = tmp_path / "last.ckpt"
    truncated.write_bytes(whole[: len(whole) // 2])
    assert_refused(capsys, train_args(good_csv, tmp_path / "run", f"ckpt_path={truncated}"), tmp_path,
                   "is not a readable training checkpoint (not a torch checkpoint archive, or a truncated one)")


def test_train_help_prints_help(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("one4all train [--cfg] [key=value ...]")
    assert [line for line in out.splitlines() if line.startswith("  model ") and "one4all" in line]


# ---- section 4: data that was accepted or mis-explained ------------------------------------------

def _variant(good: Path, folder: Path, edit) -> Path:
    path = folder / "variant.csv"
    result = edit(pd.read_csv(good))
    path.write_text(result if isinstance(result, str) else result.to_csv(index=False))
    return path


def _scaled(f):
    f["sales"] = f["sales"] * 1e39
    return f


def _thousands(f):
    f["sales"] = [f"{v * 1e6:,.2f}" for v in f["sales"]]
    return f


def _decimal_comma(f):
    f["sales"] = [f"{v:.4f}".replace(".", ",") for v in f["sales"]]
    return f.to_csv(index=False, sep=";")  # a spreadsheet's European export


def _text_target(f):
    f["sales"] = np.where(f["price"] > 0.5, "high", "low")
    return f


def _bool_target(f):
    f["sales"] = f["price"] > 0.5
    return f


DATA_CASES = {
    "target not a column under features=M": ("data.target=nosuch", None,
                                             "data.target='nosuch' is not a column (columns: ['sales', 'price'])"),
    "beyond float32": ("", _scaled, "beyond float32's range"),
    "thousands separators": ("", _thousands, "column 'sales' holds numbers written with thousands separators"),
    "decimal commas": ("", _decimal_comma, "or a decimal comma ('"),
    "text target": ("data.features=S", _text_target, "data.target='sales' is a non-numeric column"),
    "boolean target": ("data.features=S", _bool_target, "data.target='sales' is a boolean column"),
    "a folder": ("data.path={folder}", None, "is a folder, not a CSV file"),
    # "is neither in the working directory ... nor in the data root", or "is not in the working directory"
    # on a machine without a data root (a fresh clone without ../shared/data)
    "missing relative path": ("data.path=one4all_no_such_file.csv", None,
                              "data file not found: one4all_no_such_file.csv is n"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_is_one_line_and_no_run(case, good_csv, tmp_path, capsys):
    override, edit, words = DATA_CASES[case]
    csv = good_csv if edit is None else _variant(good_csv, tmp_path, edit)
    args = train_args(csv, tmp_path / "run", *filter(None, [override.format(folder=tmp_path)]))
    assert_refused(capsys, args, tmp_path, words)


def test_day_first_dates_are_read_day_first(good_csv, tmp_path):
    from one4all.data.formats.table import read_table

    frame = pd.read_csv(good_csv)
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%d/%m/%Y %H:%M")
    frame.to_csv(tmp_path / "ddmm.csv", index=False)
    table = read_table(tmp_path / "ddmm.csv")
    assert table.freq == "h" and str(table.timestamps[0]) == "2024-01-01 00:00:00"
    assert str(table.timestamps[-1]) == "2024-01-25 23:00:00"  # 600 hours later, not a shuffled December
    # Month first stays pandas' reading when no day is above 12.
    frame = pd.DataFrame({"date": ["01/02/2024", "01/03/2024", "01/04/2024"], "y": [1.0, 2.0, 3.0]})
    frame.to_csv(tmp_path / "mmdd.csv", index=False)
    assert str(read_table(tmp_path / "mmdd.csv").timestamps[1]) == "2024-01-03 00:00:00"


# ---- section 1: a manifest cannot run code --------------------------------------------------------

MARKER_MODULE = "one4all_marker_module_x"


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "evil"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    return copy


def _payloads(mark: Path) -> dict[str, tuple[list, object]]:
    """name -> (path of keys in the manifest to replace or add, the value put there)."""
    touch = f"touch {mark}"
    marker_target = f"{MARKER_MODULE}.boom"
    return {
        "nested _target_ at backbone (os.system via one4all.)": (
            ["network", "backbone"], {"_target_": "one4all.artifact.os.system", "_args_": [touch]}),
        "nested _target_ at adapter (arbitrary write)": (
            ["network", "adapter"], {"_target_": "one4all.artifact.atomic_write_text", "_args_": [str(mark), "x"]}),
        "top-level _target_ (subprocess)": (
            ["network"], {"_target_": "subprocess.call", "_args_": [["touch", str(mark)]]}),
        "builtins.exec via one4all.": (
            ["network", "backbone"], {"_target_": "one4all.api.tempfile.os.system", "_args_": [touch]}),
        "_partial_ with builtins": (
            ["network", "adapter"], {"_target_": "builtins.exec", "_partial_": True,
                                     "_args_": [f"open({str(mark)!r}, 'w')"]}),
        "_target_ beside a valid type": (["network", "backbone", "_target_"], "os.system"),
        "_args_ beside a valid type": (["network", "adapter", "_args_"], [touch]),
        "_recursive_ / _convert_ keys": (["network", "_convert_"], "all"),
        "type names an import path": (["network", "adapter", "type"], "one4all.adapters.lora.LoRASpec"),
        "type names a marker module": (["network", "type"], marker_target),
        "target spelt without underscores": (["network", "backbone", "target"], marker_target),
        "dunder target spelling": (["network", "backbone", "__target__"], marker_target),
        "upper-case target spelling": (["network", "adapter", "_TARGET_"], marker_target),
        "env interpolation": (["network", "backbone", "path"], "${oc.env:HOME}"),
        "resolver interpolation": (["network", "backbone", "path"], f"${{oc.create:{{_target_: {marker_target}}}}}"),
        "interpolation in a list": (["network", "adapter", "lora_targets"], ["wpe", "${now:%Y}"]),
        "hub attention kernel": (["network", "backbone", "attn_implementation"], "kernels-community/flash-attn"),
        "GPT-2 config remote code": (["network", "backbone", "config", "auto_map"], {"AutoModel": marker_target}),
        "io with extra key": (["io", "_target_"], marker_target),
    }


def _set(manifest: dict, keys: list, value) -> None:
    node = manifest
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


@pytest.fixture()
def marker_module(tmp_path, monkeypatch) -> Path:
    """A module whose import (or call) writes a marker file: it must never be imported."""
    mark = tmp_path / "IMPORTED"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{MARKER_MODULE}.py").write_text(
        f"open({str(mark)!r}, 'w').close()\ndef boom(*a, **k):\n    open({str(mark)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    return mark


@pytest.mark.parametrize("case", list(_payloads(Path("x"))))
def test_malicious_manifest_never_runs_code(case, run_dir, good_csv, tmp_path, capsys, marker_module):
    mark = tmp_path / "MARK"
    keys, value = _payloads(mark)[case]
    evil = _copy(run_dir, tmp_path)
    manifest = json.loads((evil / "model" / MANIFEST).read_text())
    _set(manifest, keys, value)
    (evil / "model" / MANIFEST).write_text(json.dumps(manifest))
    out = tmp_path / "forecast.csv"
    assert_refused(capsys, ["forecast", "--run", str(evil), "--csv", str(good_csv), "--out", str(out)], tmp_path,
                   "error: ")
    assert not mark.exists() and not marker_module.exists() and MARKER_MODULE not in sys.modules
    with pytest.raises(UserError):
        load_artifact(evil / "model")
    assert not mark.exists() and not marker_module.exists() and MARKER_MODULE not in sys.modules


def test_loading_never_reaches_hydra(run_dir, monkeypatch):
    import hydra._internal.utils

    import one4all.config

    def refuse(*args, **kwargs):
        raise AssertionError("loading an artifact reached Hydra's instantiate/locate")

    monkeypatch.setattr(hydra._internal.utils, "_locate", refuse)
    monkeypatch.setattr(one4all.config, "instantiate", refuse)
    network, manifest = load_artifact(run_dir / "model")
    assert manifest["network"]["type"] == "one4all" and network(torch.zeros(1, 24, 1)).shape == (1, 8, 1)


def _edit(keys: list, value):
    def edit(manifest: dict) -> None:
        _set(manifest, keys, value)
    return edit


def _drop(*keys: str):
    def edit(manifest: dict) -> None:
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return edit


BAD_MANIFESTS = {
    "huge width": (_edit(["network", "backbone", "config", "n_embd"], 2**20),
                   "GB for its weights, more than the"),
    "width that overflows torch": (_edit(["network", "backbone", "config", "n_embd"], 2**40),
                                   "network: Storage size calculation overflowed"),
    "huge width that stays in memory": (_edit(["network", "backbone", "config", "n_embd"], 64),
                                        "the stored tensors do not fit the network"),
    "huge rank": (_edit(["network", "adapter", "rank"], 10**12), "GB for its weights"),
    "width beyond 64 bits": (_edit(["network", "backbone", "config", "n_embd"], 10**30),
                             "model.backbone.config.n_embd=1000000000000000000000000000000 is invalid"),
    "no network": (_drop("network"), "'network' is missing or not a dict"),
    "network is a list": (_edit(["network"], [1, 2]), "'network' is missing or not a dict"),
    "no type": (_drop("network", "type"), "network.type=None is not a registered name"),
    "text scaler": (_edit(["data", "scaler", "std"], ["a", "b"]), "expected a mapping of lists of finite numbers"),
    "zero scaler std": (_edit(["data", "scaler", "std"], [0.0, 1.0]), "data.scaler.std=[0.0, 1.0] must be positive"),
    "NaN scaler": (_edit(["data", "scaler", "mean"], [float("nan"), 0.0]), "data.scaler={'mean': [nan, 0.0]"),
    "garbage freq": (_edit(["data", "freq"], "every tuesday"), "data.freq='every tuesday' is not a pandas frequency"),
    "channel index out of range": (_edit(["data", "target_channels"], [7]), "data.target_channels=[7]"),
    "seq_len a string": (_edit(["io", "seq_len"], "24"), "io.seq_len='24' is invalid: expected an integer"),
    "negative seq_len": (_edit(["io", "seq_len"], -24), "io: IOSpec.seq_len=-24 must be positive"),
    "n_layers a float": (_edit(["network", "backbone", "n_layers"], 1.5), "network.backbone.n_layers=1.5"),
    "old version": (_edit(["version"], 1), "artifact of version 1, whose manifests named Python classes"),
    "unregistered network": (_edit(["network", "type"], "gpt5"), "network.type='gpt5' is not a registered name"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_bad_manifest_is_one_line(case, run_dir, good_csv, tmp_path, capsys):
    edit, words = BAD_MANIFESTS[case]
    evil = _copy(run_dir, tmp_path)
    manifest = json.loads((evil / "model" / MANIFEST).read_text())
    edit(manifest)
    (evil / "model" / MANIFEST).write_text(json.dumps(manifest))
    out = tmp_path / "forecast.csv"
    assert_refused(capsys, ["forecast", "--run", str(evil), "--csv", str(good_csv), "--out", str(out)], tmp_path,
                   words)


@pytest.fixture(scope="module")
def long_run(long_csv, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny long-format run (two series) and its CSV."""
    run = tmp_path_factory.mktemp("long_run") / "run"
    assert main(["train", "data=long", f"data.path={long_csv}", "task.seq_len=24", "task.horizon=8",
                 *TINY_OVERRIDES, "trainer.max_steps=2", f"hydra.run.dir={run}"]) == 0
    return run, long_csv


BAD_PANEL_MANIFESTS = {
    "zero std": (["data", "series", "std"], [[0.0], [0.7]], "data.series.std positive (it divides the data)"),
    "NaN mean": (["data", "series", "mean"], [[float("nan")], [0.1]], "data.series.mean must be finite"),
    "text std": (["data", "series", "std"], [["a"], ["b"]], "data.series.mean and .std must be tables of numbers"),
    "too few statistics": (["data", "series", "std"], [[0.7]], "one row per series and one number per column"),
    "garbage freq": (["data", "freq"], "every tuesday", "data.freq='every tuesday' is not a pandas frequency"),
    "target not a column": (["data", "target_col"], "nosuch", "data.target_col='nosuch' is not one of data.columns"),
    "wrong channel count": (["io", "n_channels"], 2, "data.columns has 1 names but the network reads 2"),
    "negative missing gap": (["data", "max_missing_gap"], -1, "data.max_missing_gap=-1 must be 0 or more"),
}


@pytest.mark.parametrize("case", list(BAD_PANEL_MANIFESTS))
def test_bad_long_format_manifest_is_one_line(case, long_run, tmp_path, capsys):
    run, csv = long_run
    keys, value, words = BAD_PANEL_MANIFESTS[case]
    evil = _copy(run, tmp_path)
    manifest = json.loads((evil / "model" / MANIFEST).read_text())
    _set(manifest, keys, value)
    (evil / "model" / MANIFEST).write_text(json.dumps(manifest))
    out = tmp_path / "forecast.csv"
    err = assert_refused(capsys, ["forecast", "--run", str(evil), "--csv", str(csv), "--out", str(out)], tmp_path,
                         words)
    assert err.startswith(f"error: corrupt data schema in {evil / 'model' / MANIFEST}: "), err


def test_long_format_run_still_forecasts(long_run, tmp_path):
    run, csv = long_run
    assert main(["forecast", "--run", str(run), "--csv", str(csv), "--out", str(tmp_path / "f.csv")]) == 0
    forecast = pd.read_csv(tmp_path / "f.csv")
    assert len(forecast) == 16 and sorted(forecast["unique_id"].unique()) == ["a", "b"]
    assert np.isfinite(forecast["One4All"]).all()


def test_tensors_that_disagree_with_the_manifest_are_refused_before_building(run_dir, good_csv, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    evil = _copy(run_dir, tmp_path)
    tensors = load_file(str(evil / "model" / TENSORS))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name][..., :1].contiguous()
    save_file(tensors, str(evil / "model" / TENSORS))
    out = tmp_path / "forecast.csv"
    assert_refused(capsys, ["forecast", "--run", str(evil), "--csv", str(good_csv), "--out", str(out)], tmp_path,
                   f"the stored tensors do not fit the network ({name}: stored")


# ---- section 3: a failure never changes a file that existed before -------------------------------

def test_full_disk_while_forecasting_keeps_the_existing_out(run_dir, good_csv, tmp_path, capsys, monkeypatch):
    out, plot = tmp_path / "future.csv", tmp_path / "future.png"
    out.write_text("my precious forecast\n")
    real_fsync = os.fsync

    def full_at_the_plot(fd: int) -> None:
        if ".future.png." in os.readlink(f"/proc/self/fd/{fd}"):  # the plot's temp file: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_the_plot)
    assert_refused(capsys, ["forecast", "--run", str(run_dir), "--csv", str(good_csv), "--out", str(out),
                            "--plot", str(plot)], tmp_path,
                   f"cannot write the forecast ({plot}): the disk is full: free space; no file was written or changed")
    assert out.read_text() == "my precious forecast\n" and not plot.exists()


def test_full_disk_in_a_real_process_keeps_the_existing_out(run_dir, good_csv, tmp_path):
    # The operating system refuses the write (RLIMIT_FSIZE: no file beyond 20 kB): the CSV fits, the plot not.
    out, plot = tmp_path / "future.csv", tmp_path / "future.png"
    out.write_text("my precious forecast\n")
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
              "from one4all.cli import main\n"
              f"sys.exit(main(['forecast', '--run', {str(run_dir)!r}, '--csv', {str(good_csv)!r}, '--out', "
              f"{str(out)!r}, '--plot', {str(plot)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: cannot write the forecast ({plot}): File too large: choose a writable location with "
                     "free space; no file was written or changed"], done.stderr
    assert out.read_text() == "my precious forecast\n" and not plot.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["future.csv"]


def test_replacing_an_existing_out_is_announced(run_dir, good_csv, tmp_path, caplog):
    out = tmp_path / "future.csv"
    out.write_text("old\n")
    assert main(["forecast", "--run", str(run_dir), "--csv", str(good_csv), "--out", str(out)]) == 0
    assert f"replaced the existing {out}" in caplog.text and out.read_text().startswith("date,sales,price")


def test_full_disk_during_training_keeps_the_last_checkpoint(good_csv, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(train_args(good_csv, run)) == 0
    last = run / "checkpoints" / "last.ckpt"
    kept, model = last.read_bytes(), snapshot(run / "model")
    capsys.readouterr()
    real_fsync = os.fsync

    def full_at_checkpoints(fd: int) -> None:
        if ".ckpt." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_checkpoints)
    code = main(train_args(good_csv, run, "ckpt_path=last", "trainer.max_steps=4"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: cannot write the run's files in {run} (") and "the disk is full: free space" in err
    assert last.read_bytes() == kept and snapshot(run / "model") == model
    assert not [p for p in run.rglob("*.tmp")]


def test_write_probe_names_a_read_only_location(tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(UserError, match=r"cannot write the run directory .*: the file system is read-only"):
        probe_writable(tmp_path / "new" / "run", "the run directory")


# ---- the real command line: notices wait, so a refused command prints one line --------------------

def test_command_line_prints_one_line_for_refused_input(good_csv, tmp_path):
    frame = pd.read_csv(good_csv)
    frame["flag"] = frame["price"] > 0.5  # dropped with a notice, then refused as the target
    frame.to_csv(tmp_path / "flag.csv", index=False)
    args = train_args(tmp_path / "flag.csv", tmp_path / "run", "data.features=S", "data.target=flag")
    done = subprocess.run([sys.executable, "-m", "one4all.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: data.target='flag' is a boolean column, so it cannot be forecast; "
                                        "choose a numeric column (numeric columns: ['sales', 'price'])"]
    assert not (tmp_path / "run").exists()


# ---- the registry: every registered method saves and loads through the closed schema --------------

ADAPTER_SETTINGS = {"gelora": {"block_ranks": [2, 1]}, "welore": {"rank_reduction": 0.4},
                    "velora": {"lora_targets": ["wpe", "head", "c_attn"], "velora_parts": ["c_attn"]}}


@pytest.mark.parametrize("name", ["lora", "velora", "prelora", "gelora", "welore"])
def test_every_registered_adapter_round_trips(name, tmp_path):
    from one4all.adapters.registry import ADAPTERS
    from one4all.artifact import save_artifact
    from one4all.contract import IOSpec
    from one4all.models.backbone import BackboneSpec
    from one4all.models.one4all import One4All
    from tests.conftest import TINY_GPT2

    cls, settings = ADAPTERS[name], ADAPTER_SETTINGS.get(name, {})
    io = IOSpec(seq_len=48, n_channels=1, horizon=12)
    net = One4All(io, BackboneSpec(init="random", n_layers=2, config=TINY_GPT2), cls(rank=4, **settings),
                  patch_len=8, stride=4)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05)
    spec = {"type": "one4all", "patch_len": 8, "stride": 4,
            "backbone": {"type": "gpt2", "init": "random", "n_layers": 2, "config": TINY_GPT2},
            "adapter": {"type": name, "rank": 4, **settings, **net.adapter.replay()}}
    save_artifact(tmp_path / "model", net.eval(), spec, io, extra={})
    loaded, manifest = load_artifact(tmp_path / "model")
    assert manifest["network"]["adapter"]["type"] == name
    x = torch.randn(2, 48, 1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(x), net(x))
