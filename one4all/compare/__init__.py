"""`one4all compare`: several models, one dataset, one budget; accuracy next to cost in one table.

plan.py decides each entry's `one4all train` overrides before anything runs; runner.py hands the
entries to Hydra's launcher as jobs (one4all/sweep), each in its own process (isolated failures,
per-model peak memory) inside the comparison's run directory; report.py writes comparison.csv,
comparison.md and comparison.png.
"""

from one4all.compare.plan import Entry, plan_entries, split_overrides
from one4all.compare.runner import run_comparison

__all__ = ["Entry", "plan_entries", "run_comparison", "split_overrides"]
