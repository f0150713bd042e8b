"""The contracts between data, networks, tasks and the training loop, declared in one place.

- `IOSpec`: what goes into and out of a network. Input `x` is `[batch, length, channels]`; output:
  forecasting `[batch, horizon, channels]`, reconstruction `[batch, length, channels]`,
  classification `[batch, classes]`. Sizes that depend on the data are computed by the data side and
  passed in, never patched into configs. When `IOSpec.masked` is true the inputs have unobserved
  entries (imputation masks, classification padding, missing values): they arrive as 0 in `x`, and
  the network is called as `forward(x, mask)` with `mask[batch, length, channels]` = 1 where a value
  is observed. `IOSpec.freq` is the sampling frequency of the inputs' timestamps (None when the data
  has none); a network that reads time-feature marks (`Network.time_features`, one4all.marks) sizes
  its mark embedding from it and is called with `marks=x_mark[batch, length, n_marks]`.
- `TaskProtocol`: how a task turns a data spec into datasets, and what it records.
- `Network`: the base class of every network, with its optional capabilities declared (and no-op
  by default), so the training loop calls them instead of probing for them.
- `RunHooks`: a Lightning callback that can refuse a run before anything is written and report
  into metrics.json.
- `VAL_LOSS`: the metric every task logs for model selection (checkpoints, early stopping).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from torch import nn
from torch.utils.data import Dataset

KINDS = ("forecast", "reconstruct", "classify")

# What tasks log after each validation and what checkpoint selection and early stopping watch.
VAL_LOSS = "val/loss"


@dataclass(frozen=True)
class IOSpec:
    """What goes into and out of a network."""

    seq_len: int
    n_channels: int
    kind: str = "forecast"
    horizon: int = 0
    n_classes: int = 0
    masked: bool = False
    freq: str | None = None

    def __post_init__(self) -> None:
        for name, value in (("seq_len", self.seq_len), ("n_channels", self.n_channels)):
            if value < 1:
                raise ValueError(f"IOSpec.{name}={value} must be positive")
        if self.kind not in KINDS:
            raise ValueError(f"IOSpec.kind={self.kind!r}; expected one of {KINDS}")
        if self.masked and self.kind == "forecast":
            raise ValueError("observation masks are defined for reconstruction and classification inputs")
        if self.kind == "forecast" and self.horizon <= 0:
            raise ValueError("a forecasting network needs horizon > 0")
        if self.kind == "classify" and self.n_classes <= 1:
            raise ValueError("a classifier needs n_classes > 1")

    def as_dict(self) -> dict:
        return asdict(self)


class TaskProtocol(Protocol):
    """A task's data protocol (`task.protocol` in the config, e.g. `ForecastProtocol`).

    The training loop calls, in order: `load` the data spec, ask the network's `io_spec`, build
    the split `datasets`, pass `task_inputs` to the task module, and record `describe` in
    metrics.json and `artifact_meta` in the saved model.
    """

    def load(self, data: Any) -> Any:
        """Read and split the data spec's data (scalers fitted on training rows)."""

    def io_spec(self, loaded: Any) -> IOSpec:
        """The network's input/output sizes for this data."""

    def datasets(self, loaded: Any, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, Dataset]:
        """`train`, `val` and `test` datasets (one univariate sample per channel if `channel_independent`);
        batches carry `x_mark` when `time_features` is not `none` (only asked of data with timestamps:
        a network refuses marks when `IOSpec.freq` is None)."""

    def task_inputs(self, loaded: Any) -> dict[str, Any]:
        """Data-derived constructor arguments of the task module (scales, labels, ...)."""

    def describe(self, loaded: Any) -> dict[str, Any]:
        """The `data` block of metrics.json."""

    def artifact_meta(self, loaded: Any) -> dict[str, Any]:
        """What inference needs besides the network (schema, scaler), stored in the artifact."""


class Network(nn.Module):
    """Base class of every network: the contract's optional capabilities, declared with defaults.

    `channel_independent`: the network maps each channel on its own, so the data side serves one
    univariate sample per (window, channel). `backbone_prefix`: the name under which a frozen
    backbone is registered (`gpt2`, `bert`, ...); its parameters come from their source, not from
    `init_seed`, and artifacts verify them apart. `time_features`: the time-feature marks the network
    reads (`marks.TIME_FEATURES`); anything but `none` makes the data side compute them and the task
    pass them as `marks=`. The methods below are no-ops for a network that trains all its
    parameters from scratch (the baselines); One-for-All overrides them.
    """

    channel_independent: bool = False
    backbone_prefix: str | None = None
    time_features: str = "none"

    def calibrate(self, train: Dataset) -> None:
        """Fit data-dependent parts on the training split before training (nothing by default)."""

    def stored_frozen(self) -> set[str]:
        """Names of frozen parameters a fresh network cannot regenerate: artifacts and checkpoints store them."""
        return set()

    def replay_config(self) -> dict[str, Any]:
        """Updates to the model config so that a reload rebuilds exactly this network (e.g. settings
        estimated while building)."""
        return {}

    def run_report(self) -> dict[str, Any]:
        """Blocks for metrics.json (e.g. `backbone`, `adapter`)."""
        return {}

    def authors_validation_mode(self) -> None:
        """Set the train/eval mode its authors validate this network in (`paper_compat=true`):
        eval, unless a network says otherwise."""
        self.eval()


class RunHooks:
    """Mixin for Lightning callbacks that take part in a run beyond Lightning's hooks."""

    def check_run(self, trainer: Any, network: nn.Module) -> None:
        """Refuse a run this callback cannot serve; called before anything is written."""

    def report(self) -> dict[str, Any]:
        """Blocks for metrics.json."""
        return {}
