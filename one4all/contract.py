"""The network contract shared by One-for-All and every baseline.

Input `x` is `[batch, length, channels]`. Output: forecasting `[batch, horizon, channels]`,
reconstruction `[batch, length, channels]`, classification `[batch, classes]`. Sizes that depend on
the data are computed by the data side and passed in as an `IOSpec`, never patched into configs.

When `IOSpec.masked` is true the inputs have unobserved entries (imputation masks, classification
padding, missing values): they arrive as 0 in `x`, and the network is called as
`forward(x, mask)` with `mask[batch, length, channels]` = 1 where a value is observed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("forecast", "reconstruct", "classify")


@dataclass(frozen=True)
class IOSpec:
    """What goes into and out of a network."""

    seq_len: int
    n_channels: int
    kind: str = "forecast"
    horizon: int = 0
    n_classes: int = 0
    masked: bool = False

    def __post_init__(self) -> None:
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
