"""one4all: time-series analysis on a frozen GPT-2 with Gaussian rank-stabilised LoRA."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Forecaster", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import one4all` (and `one4all --help`) should not pay for importing torch.
    if name == "Forecaster":
        from one4all.api import Forecaster

        return Forecaster
    raise AttributeError(f"module 'one4all' has no attribute {name!r}")
