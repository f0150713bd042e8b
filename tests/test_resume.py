"""Faults: a run SIGKILLed mid-training resumes with ckpt_path=last and ends exactly where an
uninterrupted run ends; checkpoint writes are atomic."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import OmegaConf

from one4all.checkpointing import STATE_KEY, AtomicCheckpointIO, ResumeCheckpoint, resolve_ckpt_path
from one4all.cli import main
from one4all.config import compose_config
from one4all.data.datamodule import TimeSeriesDataModule
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES
from tests.probes import REPO, subprocess_env

# ETTh1 L=96 H=24, 2% of the training windows: 170 windows x 7 channels = 1190 samples, 18 batches
# of 64 per epoch; 3 epochs = 54 steps; last.ckpt every 5 steps and after each validation.
TINY_RUN = ["experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24", "data.train_fraction=0.02",
            "data.batch_size=64", "data.eval_batch_size=1000", "trainer.max_epochs=3", "trainer.limit_val_batches=2",
            "callbacks.last_checkpoint.every_n_train_steps=5", *TINY_OVERRIDES]


def train(run_dir: Path, data_root: Path, *extra: str) -> subprocess.Popen:
    """`one4all train` on the tiny run, in a fresh process."""
    cmd = [sys.executable, "-m", "one4all.cli", "train", *TINY_RUN, f"data.root={data_root}",
           f"hydra.run.dir={run_dir}", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def kill_when_stalled(proc: subprocess.Popen, marker: Path) -> None:
    """Wait until the run blocks at its StallAt point, then SIGKILL it."""
    deadline = time.monotonic() + 240
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"run ended before the stall point:\n{proc.stdout.read()[-3000:]}")
        assert time.monotonic() < deadline, "run never reached the stall point"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    marker.unlink()


def stall(marker: Path, phase: str, step: int = 0) -> str:
    return f"+callbacks.stall={{_target_:tests.probes.StallAt,marker:'{marker}',phase:{phase},step:{step}}}"


def ckpt_step(path: Path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def test_kill_and_resume_reaches_the_uninterrupted_result(tmp_path, data_root):
    reference, resumed, marker = tmp_path / "reference", tmp_path / "resumed", tmp_path / "stalled"
    uninterrupted = train(reference, data_root)

    # Killed mid-epoch 2 (step 23: last.ckpt is from step 20, steps 21-23 are redone), then at the
    # first step of epoch 3 (last.ckpt from the validation closing epoch 2), then during testing.
    proc = train(resumed, data_root, stall(marker, "train", 23))
    kill_when_stalled(proc, marker)
    assert ckpt_step(resumed / "checkpoints" / "last.ckpt") == 20
    for point in (stall(marker, "train", 36), stall(marker, "test")):
        proc = train(resumed, data_root, "ckpt_path=last", point)
        kill_when_stalled(proc, marker)
    assert ckpt_step(resumed / "checkpoints" / "last.ckpt") == 54
    assert not (resumed / "metrics.json").exists()
    finish(train(resumed, data_root, "ckpt_path=last"))
    finish(uninterrupted)

    ref, res = (json.loads((d / "metrics.json").read_text()) for d in (reference, resumed))
    for key in ("test/mse", "test/mae", "test/mae_original"):
        assert res[key] == ref[key], key
    assert res["run"]["global_step"] == ref["run"]["global_step"] == 54
    assert res["run"]["resumed_from"] == str(resumed / "checkpoints" / "last.ckpt")
    for name in ("best.ckpt", "last.ckpt"):
        a, b = (torch.load(d / "checkpoints" / name, weights_only=True) for d in (reference, resumed))
        assert a["global_step"] == b["global_step"]
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for k in a["state_dict"]:
            assert torch.equal(a["state_dict"][k], b["state_dict"][k]), (name, k)
    assert not [p.name for p in (resumed / "checkpoints").iterdir() if p.name not in ("best.ckpt", "last.ckpt")]
    # The logged history survives the kills: the interrupted segments' CSVs (moved aside on resume)
    # together hold every validation and training row of the uninterrupted run, with equal values.
    assert sorted(p.name for p in (resumed / "logs").glob("metrics*.csv")) == [
        "metrics.0.csv", "metrics.1.csv", "metrics.2.csv", "metrics.csv"]
    for column in ("val/loss", "train/loss_step"):
        expected = logged(reference / "logs" / "metrics.csv", column=column)
        assert len(expected) == (3 if column == "val/loss" else 2)
        assert logged(*sorted((resumed / "logs").glob("metrics.*.csv")), column=column) == expected, column


def logged(*paths: Path, column: str) -> dict[int, float]:
    """step -> value of `column` over the rows of Lightning CSV logs (later files win)."""
    values: dict[int, float] = {}
    for path in paths:
        with path.open() as handle:
            for row in csv.DictReader(handle):
                if row.get(column):
                    values[int(row["step"])] = float(row[column])
    return values


def test_resume_from_missing_last_checkpoint_is_a_user_error(tmp_path, data_root, capsys):
    run_dir = tmp_path / "never_ran"
    code = main(["train", *TINY_RUN, f"data.root={data_root}", f"hydra.run.dir={run_dir}", "ckpt_path=last"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not run_dir.exists()
    assert err.count("\n") == 0 and "last.ckpt" in err and "hydra.run.dir" in err


def test_resume_with_a_different_model_is_a_user_error(tmp_path, data_root, capsys):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}}, run_dir / "checkpoints" / "last.ckpt")
    original, _ = compose_config([*TINY_RUN, f"data.root={data_root}", "adapter.rank=8"])
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(original, resolve=True))
    code = main(["train", *TINY_RUN, f"data.root={data_root}", f"hydra.run.dir={run_dir}", "ckpt_path=last"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "different `model`" in err


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)

    def torn_save(obj, handle):  # a crash in the middle of writing the new checkpoint
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    kept = torch.load(path, weights_only=True)
    assert kept["global_step"] == 1 and torch.equal(kept["w"], torch.ones(3))


def test_resume_restores_each_ranks_rng_state():
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(torch.get_rng_state())
    expected = torch.rand(3)  # rank 1's next draws
    positions = []

    class RecordingDataModule(TimeSeriesDataModule):
        def resume_at(self, position: dict[str, int]) -> None:
            positions.append(position)

    rank1 = SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING), world_size=2, global_rank=1,
                            should_stop=False, datamodule=RecordingDataModule({}, batch_size=8))
    saved = {"data": {"epoch": 3, "samples": 128}, "rng": {"torch": torch.stack(states)}, "should_stop": True}
    callback = ResumeCheckpoint(Path("unused"))
    callback.on_load_checkpoint(rank1, None, {STATE_KEY: saved})
    torch.manual_seed(0)
    callback.on_train_start(rank1, None)
    assert torch.equal(torch.rand(3), expected)
    assert positions == [{"epoch": 3, "samples": 128}] and rank1.should_stop is True


def test_resume_ckpt_path_spellings(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert resolve_ckpt_path(None, tmp_path) is None
    assert resolve_ckpt_path("auto", tmp_path) is None  # nothing to resume: start fresh
    with pytest.raises(UserError, match="hydra.run.dir"):
        resolve_ckpt_path("last", tmp_path)
    last.parent.mkdir()
    torch.save({"state_dict": {}}, last)
    assert resolve_ckpt_path("last", tmp_path) == resolve_ckpt_path("auto", tmp_path) == str(last)
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # written by Lightning on a SLURM preemption signal, after last.ckpt
    torch.save({"state_dict": {}}, hpc)
    os.utime(last, (1, 1))
    assert resolve_ckpt_path("auto", tmp_path) == str(hpc)
    assert resolve_ckpt_path(str(hpc), tmp_path) == str(hpc)
    with pytest.raises(UserError, match="does not exist"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), tmp_path)
    hpc.write_bytes(hpc.read_bytes()[:100])  # torn by something else than our atomic writer
    with pytest.raises(UserError, match="not a readable training checkpoint"):
        resolve_ckpt_path("auto", tmp_path)


def test_resume_keeps_the_interrupted_runs_log(tmp_path):
    from one4all.train import keep_previous_log

    logs = tmp_path / "logs"
    keep_previous_log(logs)  # nothing logged yet: nothing to keep
    logs.mkdir()
    for segment in ("first", "second"):
        (logs / "metrics.csv").write_text(f"epoch,step\n{segment},0\n")
        keep_previous_log(logs)
    assert sorted(p.name for p in logs.iterdir()) == ["metrics.0.csv", "metrics.1.csv"]
    assert (logs / "metrics.1.csv").read_text().endswith("second,0\n")
