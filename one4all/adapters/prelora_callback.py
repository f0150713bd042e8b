"""PreLoRA as a Lightning callback: full training, then a switch to LoRA at partial convergence.

`adapter=prelora` trains the GPT4TS parts in full and adds this callback (METHODS.md §2.7). Every
`window_steps` training batches it closes a window (mean loss, weight and gradient norms of the
switchable modules); once the last `consecutive_windows` windows pass `prelora.converged`, it wraps
those modules with LoRA of ranks from `prelora.assign_ranks`, freezes their trained weights, and
rebuilds the optimizer (the scheduler continues where it was). LayerNorms are not LoRA-able and
keep training, as PreLoRA leaves non-targeted modules trainable.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from one4all.adapters.prelora import PreLoRASpec, Window, assign_ranks, cap_ranks, converged
from one4all.contract import RunHooks
from one4all.efficiency import batch_samples, count_parameters
from one4all.errors import UserError

log = logging.getLogger(__name__)
MB = 1024 * 1024


def _rss_mb() -> float | None:
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") / MB


class _Phase:
    """Throughput and memory of the batches before (or after) the switch; the first batch of a
    phase is not timed (one-time allocation of gradients and optimizer state)."""

    def __init__(self) -> None:
        self.batches = self.samples = 0
        self.seconds = 0.0
        self.peak_mb: float | None = None

    def memory(self, device: torch.device) -> None:
        now = torch.cuda.max_memory_allocated(device) / MB if device.type == "cuda" else _rss_mb()
        if now is not None:
            self.peak_mb = max(self.peak_mb or 0.0, now)

    def add(self, seconds: float, samples: int) -> None:
        self.batches += 1
        if self.batches > 1:
            self.seconds += seconds
            self.samples += samples

    def summary(self, trainable: int | None, device: torch.device) -> dict:
        return {"batches": self.batches,
                "samples_per_s": round(self.samples / self.seconds, 2) if self.seconds > 0 else None,
                "peak_mb": None if self.peak_mb is None else round(self.peak_mb, 1),
                "peak_mb_source": "cuda max_memory_allocated" if device.type == "cuda" else
                "process RSS sampled before backward and before each optimizer step",
                "trainable_params": trainable,
                # Gradients + Adam's two moments, fp32: what the switch saves by construction.
                "grads_and_adam_mb": None if trainable is None else round(trainable * 4 * 3 / MB, 2)}


class PreLoRASwitch(L.Callback, RunHooks):
    """Switch the fully trained `parts` to LoRA once loss and weight norms settle (METHODS.md §2)."""

    def __init__(self, parts: list[str] | tuple[str, ...] = ("wpe", "head", "patch_embedding"),
                 window_steps: int = 25, consecutive_windows: int = 3, loss_threshold: float = 10.0,
                 weight_threshold: float = 5.0, low_rank: int = 4, high_rank: int = 32) -> None:
        if window_steps < 1 or consecutive_windows < 2:
            raise UserError(f"PreLoRA needs window_steps >= 1 and consecutive_windows >= 2, got {window_steps}, "
                            f"{consecutive_windows}")
        self.parts = list(parts)
        self.window_steps, self.consecutive_windows = window_steps, consecutive_windows
        self.loss_threshold, self.weight_threshold = loss_threshold, weight_threshold
        self.low_rank, self.high_rank = low_rank, high_rank
        self.windows: list[Window] = []
        self.ranks: dict[str, int] | None = None
        self.switch_step: int | None = None
        self.trainable_before: int | None = None
        self.trainable_after: int | None = None
        self.families: dict[str, list[str]] = {}
        self.phases = {"before": _Phase(), "after": _Phase()}
        self._device = torch.device("cpu")
        self._new_window()

    def _new_window(self) -> None:
        self._steps, self._loss_sum = 0, 0.0
        self._grad_sums: dict[str, float] = {}

    def _weights(self, network: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {m: network.get_submodule(m).weight for modules in self.families.values() for m in modules}

    def check_run(self, trainer: L.Trainer, network: torch.nn.Module) -> None:
        """Refuse a run this callback cannot serve; `one4all.train.run` calls it before anything is
        written, so a bad run leaves no directory."""
        self._families(trainer, network)

    def _families(self, trainer: L.Trainer, network: torch.nn.Module) -> dict[str, list[str]]:
        """The switchable module families per part, after checking the run can be served."""
        if trainer.world_size > 1:
            raise UserError("PreLoRA switching changes the trained parameters mid-run and runs on one process; "
                            "drop trainer=ddp (or use another adapter)")
        if not isinstance(network.adapter, PreLoRASpec):
            raise UserError("the PreLoRA switch needs the PreLoRA adapter; use adapter=prelora")
        parts = network.lora_parts()
        unknown = [p for p in self.parts if p not in parts]
        if unknown:
            raise UserError(f"PreLoRA part {unknown[0]!r} does not exist; available: {', '.join(sorted(parts))}")
        families = {p: parts[p] for p in self.parts if parts[p]}
        if self.ranks is None:
            frozen = [m for modules in families.values() for m in modules
                      if not network.get_submodule(m).weight.requires_grad]
            if frozen:
                raise UserError(f"PreLoRA switches parts that train in full, but {frozen[0]} is frozen; list its part "
                                "in adapter.train_full (adapter=prelora does)")
        return families

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.families = self._families(trainer, pl_module.network)
        self._device = pl_module.device
        if self.ranks is None:
            self.trainable_before = count_parameters(pl_module.network)["trainable_params"]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._started = time.perf_counter()

    def _phase(self) -> _Phase:
        return self.phases["before" if self.ranks is None else "after"]

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._phase().memory(pl_module.device)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._phase().memory(pl_module.device)
        if self.ranks is not None:
            return
        for module, weight in self._weights(pl_module.network).items():
            norm = 0.0 if weight.grad is None else float(weight.grad.detach().float().norm())
            self._grad_sums[module] = self._grad_sums.get(module, 0.0) + norm

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._phase().add(time.perf_counter() - self._started, batch_samples(batch))
        if self.ranks is not None:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._loss_sum += float(loss.detach())
        self._steps += 1
        if self._steps < self.window_steps:
            return
        weights = self._weights(pl_module.network)
        self.windows.append(Window(self._loss_sum / self._steps,
                                   {m: float(w.detach().float().norm()) for m, w in weights.items()},
                                   {m: self._grad_sums.get(m, 0.0) / self._steps for m in weights}))
        self.windows = self.windows[-self.consecutive_windows:]
        self._new_window()
        if len(self.windows) == self.consecutive_windows and converged(
                self.windows, self.families, self.loss_threshold, self.weight_threshold):
            self._switch(trainer, pl_module)

    def _switch(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ranks = assign_ranks(self.windows[-2], self.windows[-1], self.low_rank, self.high_rank)
        shapes = {m: tuple(w.shape) for m, w in self._weights(pl_module.network).items()}
        self.ranks = cap_ranks(ranks, shapes, self.low_rank, self.high_rank)
        self.switch_step = trainer.global_step
        if not self.ranks:
            log.info("PreLoRA: converged at step %d, but LoRA would not be smaller than any module; training "
                     "on in full", self.switch_step)
            return
        self._apply(pl_module)
        _rebuild_optimizers(trainer)
        _forget_best(trainer)
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        log.info("PreLoRA: switched %s to LoRA at step %d (trainable %d -> %d)", self.ranks, self.switch_step,
                 self.trainable_before, self.trainable_after)

    def _apply(self, pl_module: L.LightningModule) -> None:
        network = pl_module.network
        network.adapter.switch(network, self.ranks)
        self.trainable_after = count_parameters(network)["trainable_params"]

    def state_dict(self) -> dict:
        return {"ranks": self.ranks, "switch_step": self.switch_step, "trainable_before": self.trainable_before,
                "windows": [asdict(w) for w in self.windows], "steps": self._steps, "loss_sum": self._loss_sum,
                "grad_sums": self._grad_sums}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get("callbacks", {}).get(self.state_key)
        if state is None or pl_module.network.adapter.switched:
            return
        self.windows = [Window(**w) for w in state["windows"]]
        self._steps, self._loss_sum, self._grad_sums = state["steps"], state["loss_sum"], dict(state["grad_sums"])
        self.trainable_before = state["trainable_before"]
        if state["ranks"]:
            # Resuming after the switch: the fresh network is pre-switch and Lightning loaded only the
            # keys it knew; rebuild the switched form, then load the wrapped and LoRA weights too.
            self.ranks, self.switch_step = dict(state["ranks"]), state["switch_step"]
            self._apply(pl_module)
            pl_module.load_state_dict(checkpoint["state_dict"], strict=False)

    def report(self) -> dict:
        """The `prelora` block of metrics.json."""
        device = self._device
        return {"prelora": {
            "switched": bool(self.ranks), "switch_step": self.switch_step, "ranks": self.ranks,
            "window_steps": self.window_steps, "window_losses": [round(w.loss, 6) for w in self.windows],
            "before": self.phases["before"].summary(self.trainable_before, device),
            "after": self.phases["after"].summary(self.trainable_after, device),
        }}


def _rebuild_optimizers(trainer: L.Trainer) -> None:
    """New optimizers over the new trainable set; schedulers fast-forwarded to where the old ones were."""
    done = [config.scheduler.last_epoch for config in trainer.lr_scheduler_configs]
    trainer.strategy.setup_optimizers(trainer)
    with warnings.catch_warnings():  # stepping a scheduler before its optimizer: intended here
        warnings.simplefilter("ignore", UserWarning)
        for config, steps in zip(trainer.lr_scheduler_configs, done):
            for _ in range(steps):
                config.scheduler.step()


def _forget_best(trainer: L.Trainer) -> None:
    """Checkpoints from before the switch hold the other parameter layout: they cannot be 'best' now."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            if trainer.is_global_zero:
                Path(callback.best_model_path).unlink(missing_ok=True)
            callback.best_k_models, callback.best_model_path, callback.best_model_score = {}, "", None
            callback.kth_best_model_path = ""
            callback.kth_value = torch.tensor(torch.inf if callback.mode == "min" else -torch.inf)
