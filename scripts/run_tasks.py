"""Run the task table: every `configs/experiment/<task>/*.yaml`, one `one4all train` each.

    python scripts/run_tasks.py --out outputs/tasks -- data.root=../shared/data model.backbone.init=random
    python scripts/run_tasks.py --tasks imputation anomaly classification \\
        --task-override imputation:trainer.max_steps=300 -- data.root=../shared/data trainer.max_steps=3

Overrides after `--` go to every run; `--task-override TASK:KEY=VALUE` to one task's runs (after
the common ones, so they win). Each run writes `<out>/<task>/<name>/`; a failing run is reported
and the others go on. The table of `test/*` metrics goes to `<out>/results.md` (markdown) and
`<out>/results.csv` (one row per metric).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TASKS = ("long_term", "short_term", "imputation", "anomaly", "classification", "few_shot", "zero_shot")


@dataclass
class Result:
    """One experiment's outcome: its metrics (empty if the run failed) and a status line."""

    task: str
    experiment: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)


def discover(config_dir: Path, tasks: list[str]) -> list[tuple[str, str]]:
    """(task, experiment name) for every experiment file of the given task folders, in task order."""
    found = []
    for task in tasks:
        for path in sorted((config_dir / "experiment" / task).glob("*.yaml")):
            found.append((task, f"{task}/{path.stem}"))
    return found


def read_metrics(run_dir: Path) -> dict[str, float]:
    """The `test/*` numbers of a finished run directory."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k.startswith("test/") and isinstance(v, int | float)}


def run_one(task: str, experiment: str, out: Path, overrides: list[str]) -> Result:
    run_dir = out / experiment
    command = [sys.executable, "-m", "one4all.cli", "train", f"experiment={experiment}", *overrides,
               f"hydra.run.dir={run_dir}"]
    print("$", " ".join(command[2:]), flush=True)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    (out / experiment).parent.mkdir(parents=True, exist_ok=True)
    (out / f"{experiment}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Result(task, experiment, f"failed (exit {done.returncode}): {last}")
    return Result(task, experiment, "ok", read_metrics(run_dir))


def markdown(results: list[Result]) -> str:
    """A markdown table: task, experiment, its test metrics (4 significant digits), status."""
    lines = ["| task | experiment | test metrics | status |", "|---|---|---|---|"]
    for r in results:
        shown = ", ".join(f"{k.removeprefix('test/')} {v:.4g}" for k, v in r.metrics.items())
        lines.append(f"| {r.task} | `{r.experiment}` | {shown or '-'} | {r.status} |")
    return "\n".join(lines) + "\n"


def write_csv(results: list[Result], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "experiment", "metric", "value"])
        for r in results:
            for key, value in r.metrics.items():
                writer.writerow([r.task, r.experiment, key, value])


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    common = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "tasks")
    parser.add_argument("--task-override", action="append", default=[], metavar="TASK:KEY=VALUE")
    parser.add_argument("--dry-run", action="store_true", help="list the experiments and exit")
    return parser.parse_args(argv), common


def main(argv: list[str] | None = None) -> int:
    args, common = parse(list(sys.argv[1:] if argv is None else argv))
    per_task: dict[str, list[str]] = {}
    for item in args.task_override:
        task, _, override = item.partition(":")
        if task not in TASKS or "=" not in override:
            print(f"error: --task-override {item!r}; use TASK:KEY=VALUE with TASK in {', '.join(TASKS)}",
                  file=sys.stderr)
            return 2
        per_task.setdefault(task, []).append(override)
    args.out = args.out.resolve()
    experiments = discover(REPO / "configs", args.tasks)
    if args.dry_run:
        print("\n".join(name for _, name in experiments))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    results = [run_one(task, name, args.out, [*common, *per_task.get(task, [])]) for task, name in experiments]
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    write_csv(results, args.out / "results.csv")
    print(table)
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
