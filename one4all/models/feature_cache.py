"""Memo of frozen backbone features, so that epochs after the first skip GPT-2.

Used by the One-for-All network when `model.cache_backbone_features=true` and nothing before the
head trains (e.g. `adapter=linear_probe`). The cached function must be deterministic: the network
keeps its frozen front (token embedding + GPT-2) in eval mode while caching, so GPT-2's dropout is
off in training too. Entries are keyed by the exact bytes of each token sequence (and the autocast
precision), so a hit returns exactly what recomputing would, on any split and in any order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

MB = 1024 * 1024


class FeatureCache:
    """Features per token sequence, computed once by `compute`, up to `max_mb` megabytes.

    When the budget is full, further sequences are computed on every call (and not stored).
    """

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max_mb * MB)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._features: dict[tuple, torch.Tensor] = {}
        self._full_warned = False

    def __len__(self) -> int:
        return len(self._features)

    def clear(self) -> None:
        """Forget every entry (e.g. after the frozen weights were replaced)."""
        self._features.clear()
        self.nbytes = 0

    def __call__(self, tokens: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """`compute(tokens)` (one output row per sequence), served from the memo where possible."""
        device = tokens.device.type
        precision = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        rows = tokens.detach().reshape(len(tokens), -1).contiguous().view(torch.uint8).cpu().numpy()
        prefix = (precision, tokens.dtype, tuple(tokens.shape[1:]))
        keys = [(*prefix, row.tobytes()) for row in rows]
        missing = [i for i, key in enumerate(keys) if key not in self._features]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh = {}
        if missing:
            with torch.no_grad():
                computed = compute(tokens[missing])
            for i, row in zip(missing, computed, strict=True):
                fresh[keys[i]] = row
                self._store(keys[i], row)
        return torch.stack([self._features.get(key, fresh.get(key)) for key in keys])

    def _store(self, key: tuple, row: torch.Tensor) -> None:
        size = row.numel() * row.element_size()
        if key in self._features:
            return
        if self.nbytes + size > self.max_bytes:
            if not self._full_warned:
                log.warning("backbone feature cache is full (%.0f MB, %d sequences): further sequences are "
                            "recomputed; raise model.feature_cache_mb to cache them", self.nbytes / MB, len(self))
                self._full_warned = True
            return
        # A copy, not a view (which would keep the whole batch alive), made outside inference mode:
        # features computed during validation (Lightning runs it under inference_mode) must be
        # usable by a later training step, which saves them for the head's weight gradient.
        with torch.inference_mode(False):
            self._features[key] = row.clone()
        self.nbytes += size
