"""Scale-out: `trainer=ddp` runs 2 gloo processes on CPU; ranks train on disjoint data, evaluation
scores every sample exactly once, and only rank 0 writes the run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from one4all.artifact import load_artifact
from one4all.config import compose_config
from one4all.contract import IOSpec
from one4all.data.samplers import EpochShuffleSampler, ShardSampler, epoch_permutation
from one4all.data.sources.table import CsvData
from one4all.data.windows.forecast import ForecastProtocol
from one4all.errors import UserError
from one4all.metrics import ErrorAccumulator
from one4all.models.backbone import BackboneSpec
from one4all.models.one4all import One4All
from tests.conftest import TINY_GPT2, TINY_OVERRIDES
from tests.probes import REPO, subprocess_env

# ETTh1 L=96 H=24: 8521 train windows x 7 channels = 59,647 training samples, 2857 x 7 = 19,999 test.
DDP_RUN = ["experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24", "trainer.max_steps=4",
           "trainer.val_check_interval=2", "trainer.limit_val_batches=2", "data.batch_size=64",
           "data.eval_batch_size=1000", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *TINY_OVERRIDES]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data_root):
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    probe = f"+callbacks.probe={{_target_:tests.probes.IndexProbe,out:'{run_dir / 'probe'}'}}"
    cmd = [sys.executable, "-m", "one4all.cli", "train", *DDP_RUN, f"data.root={data_root}",
           f"hydra.run.dir={run_dir}", probe]
    done = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    ranks = [json.loads((run_dir / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    return run_dir, done.stdout, ranks


def test_ddp_ranks_train_on_disjoint_data(ddp_run):
    _, _, ranks = ddp_run
    assert [r["world_size"] for r in ranks] == [2, 2]
    seen = [r["train"] for r in ranks]
    assert [len(s) for s in seen] == [4 * 64, 4 * 64]  # 4 steps of 64 samples on each rank
    assert not set(seen[0]) & set(seen[1])
    # Together they consumed exactly the first 512 positions of epoch 0's permutation (seed 2021).
    assert sorted(seen[0] + seen[1]) == sorted(epoch_permutation(59647, 2021, 0)[:512].tolist())


def test_ddp_test_split_is_scored_once_and_exactly(ddp_run, data_root):
    run_dir, _, ranks = ddp_run
    shards = [r["test"] for r in ranks]
    assert [len(s) for s in shards] == [9999, 10000]
    assert sorted(shards[0] + shards[1]) == list(range(19999))
    # The all-reduced DDP metric equals a single-process evaluation of the same weights.
    network, _ = load_artifact(run_dir / "model")
    windowing = ForecastProtocol(96, 24)
    test = windowing.datasets(windowing.load(CsvData("ETTh1/ETTh1.csv", root=str(data_root))), True)["test"]
    acc = ErrorAccumulator(7)
    with torch.no_grad():
        for lo in range(0, len(test), 1000):
            batch = test.__getitems__(list(range(lo, min(lo + 1000, len(test)))))
            acc.update(network(batch["x"]), batch["y"], batch["channel"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/mse"] == pytest.approx(acc.compute()["mse"], rel=1e-6)
    assert metrics["run"]["world_size"] == 2 and metrics["run"]["global_step"] == 4


def test_ddp_run_directory_is_written_once(ddp_run):
    run_dir, stdout, _ = ddp_run
    assert stdout.count("run directory:") == 1
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml", "logs", "metrics.json",
                                                          "model", "probe"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in (run_dir / "model").iterdir()) == ["model.json", "trainable.safetensors"]
    assert [p.name for p in (run_dir / "logs").iterdir()] == ["metrics.csv"]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_ddp_train_sampler_deals_disjoint_equal_shares(world):
    shares = [list(EpochShuffleSampler(10, seed=7, rank=r, world_size=world)) for r in range(world)]
    assert all(len(s) == 10 // world for s in shares)
    flat = [i for s in shares for i in s]
    assert len(set(flat)) == len(flat)
    usable = 10 // world * world
    assert sorted(flat) == sorted(epoch_permutation(10, 7, 0)[:usable].tolist())


def test_resume_skips_consumed_samples_whatever_the_world_size():
    order = epoch_permutation(20, 3, 1).tolist()
    # 2 ranks consumed 2 batches of 2 each (8 samples) of epoch 1; resume on 1 process, then on 2.
    single = EpochShuffleSampler(20, seed=3)
    single.resume(1, 8)
    assert list(single) == order[8:]
    pair = [EpochShuffleSampler(20, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for sampler in pair:
        sampler.set_epoch(1)
        full = list(sampler)
        sampler.resume(1, 8)
        assert list(sampler) == full[4:]
    # The skip applies once, and only to the epoch it was taken in.
    assert list(single) == order
    single.resume(0, 8)
    single.set_epoch(1)
    assert list(single) == order


def test_ddp_eval_shards_cover_every_sample_once():
    shards = [list(ShardSampler(10, rank=r, world_size=3)) for r in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert list(ShardSampler(10)) == list(range(10))


def test_ddp_many_channels_pass_gpt2_in_bounded_chunks():
    # Traffic-like joint windows: 2 x 862 series; inference sends at most 100 through GPT-2 at a time.
    net = One4All(IOSpec(32, 862, horizon=8), BackboneSpec(init="random", n_layers=1, config=TINY_GPT2),
                  channel_chunk=100).eval()
    sizes = []
    net.gpt2.register_forward_hook(lambda module, args, kwargs, out: sizes.append(len(kwargs["inputs_embeds"])),
                                   with_kwargs=True)
    x = torch.randn(2, 32, 862)
    with torch.no_grad():
        chunked = net(x)
    assert sizes == [100] * 17 + [24]
    net.channel_chunk = None
    with torch.no_grad():
        whole = net(x)
    assert sizes[-1] == 1724 and torch.allclose(chunked, whole, atol=1e-5)
    net.channel_chunk = 100
    net(x).sum().backward()  # with gradients chunking saves nothing, so the batch passes whole
    assert sizes[-1] == 1724


def test_ddp_under_torchrun_or_srun_needs_an_explicit_run_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(UserError, match="hydra.run.dir"):
        compose_config(["trainer=ddp"])
    _, run_dir = compose_config(["trainer=ddp", f"hydra.run.dir={tmp_path}"])
    assert run_dir == tmp_path
