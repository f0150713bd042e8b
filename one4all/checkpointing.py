"""Crash-safe checkpoints and exact resumption (`ckpt_path=last`).

Three pieces: checkpoint files are written atomically (`AtomicCheckpointIO`); `last.ckpt` is
refreshed often (`ResumeCheckpoint`); and it carries what Lightning does not restore by itself,
so that a run killed at any point and resumed takes the same steps as one never interrupted:
the position in the epoch's data order, torch's RNG state (dropout) per rank, and whether early
stopping had already ended training.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn

from one4all.atomic import atomic_write
from one4all.data.datamodule import TimeSeriesDataModule
from one4all.errors import UserError
from one4all.schema import first_line

LAST = "last.ckpt"
STATE_KEY = "one4all_resume"


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` into a temp file beside the target, fsync, then rename over it.

    Lightning's own save stages the file in the system temp folder and moves it, which is a copy
    (not atomic) when that folder is on another filesystem than the run directory, e.g. node-local
    /tmp and a shared run directory on a cluster: a SIGKILL mid-copy would leave a torn last.ckpt.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            # Object stores and storage options: keep Lightning's fsspec path.
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        # Serialised in memory first: torch's writer reports a failed write (a full disk) as a bare
        # RuntimeError, a plain file write as an OSError naming the file and its errno.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with atomic_write(path, "wb") as handle:
            handle.write(buffer.getbuffer())


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint to resume from, or None to start fresh. Raises UserError for a missing file.

    `last`: `<run_dir>/checkpoints/last.ckpt`, which must exist. `auto`: the newest resume point
    in `run_dir` if there is one (last.ckpt, or the `hpc_ckpt_<n>.ckpt` Lightning writes when SLURM
    signals a preemption), else a fresh start: for jobs that are requeued with the same command.
    Anything else is a path to a .ckpt file.
    """
    if ckpt_path is None:
        return None
    last = run_dir / "checkpoints" / LAST
    if str(ckpt_path) == "auto":
        candidates = [p for p in (last, *run_dir.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
        if not candidates:
            return None
        newest = max(candidates, key=lambda p: p.stat().st_mtime)
        check_checkpoint(newest)
        return str(newest)
    if str(ckpt_path) == "last":
        if not last.is_file():
            raise UserError(f"ckpt_path=last but {last} does not exist; pass hydra.run.dir=<the interrupted run's "
                            "directory> (or ckpt_path=auto to start fresh when there is nothing to resume)")
        check_checkpoint(last)
        return str(last)
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise UserError(f"ckpt_path={ckpt_path} does not exist; pass an existing .ckpt file, last or auto")
    check_checkpoint(path)
    return str(path.resolve())


def check_checkpoint(path: Path) -> None:
    """Refuse a file that is not a readable training checkpoint (another format, truncated) in one line.

    Read as Lightning will resume from it: `weights_only`, so nothing in it can run code.
    """
    try:
        # mmap: the tensors are not read, only the archive's index and the pickled structure.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:  # weights_only refused what the pickle names
        reason = first_line(err)[:120]
    except (RuntimeError, EOFError, OSError, ValueError):
        reason = "not a torch checkpoint archive, or a truncated one"
    else:
        reason = None if isinstance(state, dict) and "state_dict" in state else "it holds no training state"
    if reason is not None:
        raise UserError(f"ckpt_path: {path} is not a readable training checkpoint ({reason}); pass a .ckpt written "
                        "by `one4all train` (e.g. ckpt_path=last with its hydra.run.dir)")


def _gathered(trainer: L.Trainer, state: torch.Tensor) -> torch.Tensor:
    """`[world_size, *state.shape]` on the CPU: every rank's copy of `state`."""
    if trainer.world_size == 1:
        return state.unsqueeze(0)
    # NCCL only moves tensors that live on the GPU.
    local = state.to(trainer.strategy.root_device)
    parts = [torch.empty_like(local) for _ in range(trainer.world_size)]
    torch.distributed.all_gather(parts, local)
    return torch.stack(parts).cpu()


class ResumeCheckpoint(Checkpoint):
    """Keeps `<dirpath>/last.ckpt` the newest training state and makes resuming from it exact.

    Saves every `every_n_train_steps` optimizer steps (0: never by step count), after every
    validation and when training ends. A `Checkpoint` subclass, so Lightning runs it after the
    other callbacks: the best-model and early-stopping states it stores are already updated.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 0) -> None:
        if every_n_train_steps < 0:
            raise UserError(f"callbacks.last_checkpoint.every_n_train_steps={every_n_train_steps}; use 0 (off) or a "
                            "positive count")
        self.path = Path(dirpath) / LAST
        self.every_n_train_steps = every_n_train_steps
        self._pending: dict[str, Any] | None = None
        self._saved_step = 0

    def _save(self, trainer: L.Trainer) -> None:
        # weights_only=False: the full training state (optimizer, loops, callbacks), not just weights.
        trainer.save_checkpoint(self.path, weights_only=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n, step = self.every_n_train_steps, trainer.global_step
        # With gradient accumulation several batches share a step: save once, right after the update.
        if n and step % n == 0 and step != self._saved_step:
            self._saved_step = step
            self._save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        # Called on every rank (Lightning dumps everywhere, rank 0 writes), so collectives are safe here.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        finished = done >= trainer.num_training_batches
        rng = {"torch": _gathered(trainer, torch.get_rng_state())}
        if torch.cuda.is_available() and trainer.strategy.root_device.type == "cuda":
            rng["cuda"] = _gathered(trainer, torch.cuda.get_rng_state())
        data = trainer.datamodule
        position = data.train_position(done, finished) if isinstance(data, TimeSeriesDataModule) else None
        checkpoint[STATE_KEY] = {"data": position, "rng": rng, "should_stop": bool(trainer.should_stop)}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(STATE_KEY)
        if state is None or trainer.state.fn != TrainerFn.FITTING:
            return
        if state["data"] is not None and isinstance(trainer.datamodule, TimeSeriesDataModule):
            trainer.datamodule.resume_at(state["data"])
        trainer.should_stop = state["should_stop"]
        self._pending = state["rng"]

    def on_train_start(self, trainer, pl_module) -> None:
        # Restored here, not at load: nothing between this hook and the first resumed step draws from it.
        rng, self._pending = self._pending, None
        if rng is None:
            return
        if len(rng["torch"]) != trainer.world_size:
            rank_zero_warn(f"resuming on {trainer.world_size} processes from a checkpoint written by "
                           f"{len(rng['torch'])}: training continues, but not bit-identically")
            return
        # clone(): a row of the stacked states is a view with a storage offset, which
        # torch.set_rng_state (2.13) reads past: it segfaults instead of restoring.
        torch.set_rng_state(rng["torch"][trainer.global_rank].clone())
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"][trainer.global_rank].clone())
