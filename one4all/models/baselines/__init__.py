"""Baseline forecasters on the One-for-All network contract (models.contract), written from their papers.

- `dlinear.DLinear`: Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023.
- `patchtst.PatchTST`: Nie et al., "A Time Series is Worth 64 Words", ICLR 2023.
- `timesnet.TimesNet`: Wu et al., "TimesNet: Temporal 2D-Variation Modeling", ICLR 2023.

Every parameter of a baseline trains, so its artifact is all of its weights.
"""

from __future__ import annotations

from one4all.contract import IOSpec
from one4all.errors import UserError


def require_kind(io: IOSpec, model: str, supported: tuple[str, ...] = ("forecast",)) -> None:
    """Fail with one line when a task asks a baseline for an output kind it has no head for."""
    if io.kind not in supported:
        raise UserError(f"model {model} has no {io.kind!r} head (it supports {', '.join(supported)}); "
                        "pick another model= for this task")
