"""The `one4all` command: a thin dispatcher to train / forecast / compare."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from one4all import notices
from one4all.errors import UserError

USAGE = """one4all <command> [args]

commands:
  train [overrides]     train and test one experiment (Hydra overrides, e.g. experiment=long_term/etth1_96)
  --cfg                 (after train) print the composed config and exit
  train -m [overrides]  multirun: every combination of a=1,2 b=x,y, one run directory per job
  --dry-run             (after train -m) list the jobs and exit
  forecast --run RUN_DIR --csv FILE --out OUT.csv [--plot OUT.png] [--horizon N]
                        forecast the steps after the last row of FILE with a trained run
  forecast ... --level 80 95
                        add split-conformal prediction intervals (<model>-lo-80, ...-hi-95)
  backtest [overrides]  forecasts from rolling origins of long-format data, scored per horizon step
                        (backtest.n_windows=3 backtest.step_size=24 backtest.level=[80,95] backtest.refit=false)
  export --run RUN_DIR --out DIR [--format torchscript|onnx] [--quantize int8] [--dtype fp32|bf16|fp16]
                        self-contained inference package (LoRA merged) with a predict.py
  compare [overrides]   train several models under one budget; table + chart of accuracy and cost
  --dry-run             (after compare) print each model's train command and exit
  report SWEEP_DIR [--published] [--out DIR]
                        the runs below SWEEP_DIR as the papers' tables (mean ± std over seeds), CSV and chart
  data list | check [--root DIR] | fetch NAME --root DIR
                        known datasets; verify a data folder; download (only when asked), verified

Examples:
  one4all train
  one4all train experiment=long_term/etth1_96 data.root=../shared/data model.backbone.init=random
  one4all train data=csv data.path=my.csv data.target=sales task.horizon=24 hydra.run.dir=runs/sales
  one4all forecast --run runs/sales --csv my.csv --out future.csv --plot future.png
  one4all train data=long data.path=stores.csv task.horizon=24 refit=true hydra.run.dir=runs/stores
  one4all forecast --run runs/stores --csv stores.csv --out future.csv --level 80 95
  one4all backtest data=long data.path=stores.csv task.horizon=24 backtest.n_windows=3
  one4all export --run runs/sales --out deploy/sales --quantize int8
  one4all compare experiment=compare/etth1_96 data.root=../shared/data model.backbone.init=random
  one4all train -m experiment=long_term/etth1_96,long_term/ettm1_96 task.horizon=96,192,336,720 seed=2021,2022,2023
  one4all report outputs/multirun/<date>/<time> --published
"""


def setup_logging() -> None:
    """Log lines as `[time][logger][level] message` on stderr; Lightning's chatter at warnings only."""
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: handlers someone else set up (pytest, an app) stay theirs
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        # one4all's notices wait until the input is accepted: a refused command prints one line.
        notices.hold(handler)
    for noisy in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


TRAIN_USAGE = """one4all train [--cfg] [key=value ...]

Train and test one experiment. Settings are Hydra overrides: key=value changes a setting,
group=option picks a config file, +key=value adds a key, ~key removes one. --cfg prints the
composed config and exits. A wrong key or value is refused in one line before anything is written.
Examples:
  one4all train experiment=long_term/etth1_96 data.root=../shared/data
  one4all train data=csv data.path=my.csv data.target=sales task.horizon=24 hydra.run.dir=runs/sales
  one4all train hydra.run.dir=runs/sales ckpt_path=last      (resume an interrupted run)

config groups (group=option):
"""


def train_help() -> str:
    """`one4all train --help`: usage and the options of every config group."""
    from one4all.paths import config_dir

    root = config_dir()
    lines = []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("__")):
        options = sorted(str(f.relative_to(group).with_suffix("")) for f in group.rglob("*.yaml"))
        shown = ", ".join(options[:8]) + (f", ... ({len(options)} in all)" if len(options) > 8 else "")
        lines.append(f"  {group.name:<10} {shown}")
    return TRAIN_USAGE + "\n".join(lines)


def cmd_train(argv: list[str]) -> int:
    """`one4all train [overrides...]`, or `one4all train -m [sweep overrides...]` for a multirun."""
    if "--help" in argv or "-h" in argv:
        print(train_help())
        return 0
    from omegaconf import OmegaConf

    from one4all.config import compose_config

    if "-m" in argv or "--multirun" in argv:
        return cmd_multirun([a for a in argv if a not in ("-m", "--multirun")])
    if "--dry-run" in argv:
        raise UserError("--dry-run lists the jobs of a multirun; add -m (one4all train -m ... --dry-run)")
    show = "--cfg" in argv
    cfg, run_dir = compose_config([a for a in argv if a != "--cfg"])
    if show:
        print(OmegaConf.to_yaml(cfg))
        return 0
    from lightning.pytorch.utilities import rank_zero_only

    from one4all.fitting import fit

    metrics = fit(cfg, run_dir)
    if rank_zero_only.rank == 0:  # under DDP every process gets here; one report is enough
        print(f"run directory: {run_dir}\n{run_summary(metrics)}")
    return 0


def run_summary(metrics: dict) -> str:
    """The line under `run directory:`: test metrics, else the best validation loss; which rows trained."""
    refit = metrics.get("fit", {})
    scores = refit.get("selection", metrics)
    keys = [k for k in scores if k.startswith("test/")] or [k for k in scores if k == "val/best_loss"]
    summary = ", ".join(f"{k}={scores[k]:.4f}" for k in keys) or "no validation check ran in the steps trained"
    data = metrics.get("data", {})
    if not any(k.startswith("test/") for k in scores):
        summary += " (no test split: data.test_size=0)"
        if not refit.get("refit") and "n_train_rows" in data and "n_rows" in data:
            summary += f"; trained on {data['n_train_rows']} of {data['n_rows']} rows"
    if refit.get("refit"):
        summary = (f"selection run: {summary}; refit on all {data['n_train_rows']} rows for "
                   f"{refit['selected_steps']} steps")
    return summary


def cmd_multirun(argv: list[str]) -> int:
    """`one4all train -m ...`: every combination of the sweep, one run directory each; exit 1 if any job failed."""
    from one4all.sweep.launch import jobs_markdown, sweep, write_jobs

    if "--cfg" in argv:
        raise UserError("--cfg prints one run's config; drop -m and give one value per key")
    dry_run = "--dry-run" in argv
    sweep_dir, outcomes, jobs = sweep([a for a in argv if a != "--dry-run"], dry_run=dry_run)
    if dry_run:
        if jobs is None:
            raise UserError("--dry-run needs the basic sweeper (this sweeper chooses its jobs while it runs)")
        for index, job in enumerate(jobs):
            print(f"{index}: {' '.join(job)}")
        print(f"{len(jobs)} job(s) -> {sweep_dir}")
        return 0
    write_jobs(outcomes, sweep_dir)
    print(jobs_markdown(outcomes, sweep_dir), end="")
    print(f"sweep directory: {sweep_dir} (jobs.csv; `one4all report {sweep_dir}` for the table)")
    failed = [o for o in outcomes if o.result.status != "ok"]
    if failed:
        print(f"{len(failed)} of {len(outcomes)} jobs did not finish: {', '.join(str(o.job) for o in failed)} "
              "(see jobs.csv)", file=sys.stderr)
    return 1 if failed or not outcomes else 0


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line UserErrors (exit 2, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}; see `{self.prog} --help`")


def cmd_forecast(argv: list[str]) -> int:
    """`one4all forecast --run RUN_DIR --csv FILE --out OUT.csv [--plot OUT.png] [--horizon N]`."""
    parser = _Parser(prog="one4all forecast", description="Forecast the steps after the last row of a CSV "
                     "with a trained run; values in the CSV's units.")
    parser.add_argument("--run", required=True, help="run directory of `one4all train` (or its model/ folder)")
    parser.add_argument("--csv", required=True,
                        help="CSV with the training schema (date + trained columns); pkg://... for a packaged file")
    parser.add_argument("--out", required=True, help="forecast CSV to write: date + one column per channel")
    parser.add_argument("--plot", help="also draw history and forecast per channel (.png, .svg or .pdf)")
    parser.add_argument("--horizon", type=int, help="steps to forecast (default and maximum: the model's)")
    parser.add_argument("--level", type=float, nargs="+", help="prediction interval levels in percent, e.g. 80 95")
    args = parser.parse_args(argv)
    import pandas as pd

    from one4all.forecast_files import forecast_csv

    future = forecast_csv(args.run, args.csv, args.out, args.plot, args.horizon, args.level)
    if pd.api.types.is_datetime64_any_dtype(future.iloc[:, 0]):  # a table: date + channels (+ bounds)
        first, last = future.iloc[0, 0], future.iloc[-1, 0]
        channels = [c for c in future.columns[1:] if "-lo-" not in str(c) and "-hi-" not in str(c)]
        what = f"{len(future)} steps ({first} .. {last}) x {len(channels)} channel(s)"
    else:  # long format: id, time, forecast (+ bounds)
        what = f"{len(future)} rows for {future.iloc[:, 0].nunique()} series"
    print(f"forecast: {what} -> {args.out}" + (f"\nplot: {args.plot}" if args.plot else ""))
    return 0


def cmd_backtest(argv: list[str]) -> int:
    """`one4all backtest [overrides...]`: long-format backtest; results in the run directory."""
    from one4all.backtest_files import run_backtest
    from one4all.config import compose_config

    cfg, run_dir = compose_config(argv, config_name="backtest")
    report = run_backtest(cfg, run_dir, argv)
    overall = ", ".join(f"{k}={v:.4g}" for k, v in report["overall"].items())
    print(f"backtest: {len(report['cutoffs'])} cutoffs, {report['model']}: {overall}\nresults: {run_dir}")
    return 0


def cmd_export(argv: list[str]) -> int:
    """`one4all export --run RUN_DIR --out DIR [--format F] [--quantize int8] [--dtype D]`."""
    from one4all.export.formats import DTYPES, FORMATS

    parser = _Parser(prog="one4all export", description="Write a self-contained inference package of a trained "
                     "forecasting run (LoRA merged; runs with numpy + torch or onnxruntime, without one4all).")
    parser.add_argument("--run", required=True, help="run directory of `one4all train` (or its model/ folder)")
    parser.add_argument("--out", required=True, help="new folder to write the package to")
    parser.add_argument("--format", default="torchscript",
                        help=f"{' | '.join(FORMATS)} (default torchscript: needs only torch + numpy to run)")
    parser.add_argument("--quantize", help="int8: dynamic int8 quantisation of the linear layers")
    parser.add_argument("--dtype", default="fp32", help=f"{' | '.join(DTYPES)} (bf16/fp16: torchscript only)")
    args = parser.parse_args(argv)
    from one4all.export import export_run

    schema = export_run(args.run, args.out, args.format, args.dtype, args.quantize)
    variant = schema["quantize"] or schema["dtype"]
    print(f"export: {schema['runtime']} {variant}, seq_len={schema['seq_len']} horizon={schema['horizon']} "
          f"-> {args.out} (forecast with: python {Path(args.out) / 'predict.py'} --csv FILE --out OUT.csv)")
    return 0


def cmd_compare(argv: list[str]) -> int:
    """`one4all compare [overrides...]`: exit 0 if every model ran, 1 if any failed (its row says why)."""
    from one4all.compare import plan_entries, run_comparison, split_overrides
    from one4all.compare.plan import override_key
    from one4all.compare.report import markdown, with_task_metrics
    from one4all.compare.runner import train_command
    from one4all.config import compose_config

    dry_run = "--dry-run" in argv
    args = [a for a in argv if a != "--dry-run"]
    own, shared = split_overrides(args)
    cfg, run_dir = compose_config(own, config_name="compare")
    entries = plan_entries(cfg.compare, shared)
    if dry_run:
        for entry in entries:
            print(f"{entry.name}: one4all {shlex.join(train_command(entry, run_dir))}")
            for note in entry.notes:
                print(f"  note: {note}")
        return 0
    # Hydra's launcher for the entries: `hydra/launcher=joblib hydra.launcher.n_jobs=2`, `submitit_slurm`, ...
    launcher = [o for o in own if override_key(o).replace("/", ".").startswith("hydra.launcher")]
    rows = run_comparison(entries, run_dir, cfg.compare.timeout_s, command=" ".join(["one4all compare", *args]),
                          launcher=launcher)
    print(markdown(with_task_metrics(rows, run_dir)), end="")
    print(f"comparison: {run_dir / 'comparison.csv'}")
    failed = [r["model"] for r in rows if r["status"] != "ok"]
    if failed:
        print(f"{len(failed)} of {len(rows)} models did not finish: {', '.join(failed)} (see their rows)",
              file=sys.stderr)
    return 1 if failed else 0


def cmd_report(argv: list[str]) -> int:
    """`one4all report SWEEP_DIR [--published] [--out DIR]`: the runs below SWEEP_DIR as the papers' tables."""
    parser = _Parser(prog="one4all report", description="Tabulate the runs below a folder as the papers do: rows "
                     "dataset, columns horizon + average, cells MSE/MAE mean ± std over seeds.")
    parser.add_argument("folder", help="sweep directory of `one4all train -m` (or any folder holding runs)")
    parser.add_argument("--published", action="store_true",
                        help="put the published numbers (One-for-All, GPT4TS, DLinear, PatchTST, TimesNet) beside ours")
    parser.add_argument("--published-file", help="another CSV of published numbers, same columns as the shipped one")
    parser.add_argument("--out", help="folder for report.md, report.csv and report.png (default: the sweep folder)")
    args = parser.parse_args(argv)
    from pathlib import Path

    from one4all.atomic import atomic_write_text
    from one4all.report.chart import write_chart
    from one4all.report.published import load_published
    from one4all.report.runs import find_runs
    from one4all.report.tables import csv_text, forecast_tables, markdown

    runs = find_runs(args.folder)
    published = load_published(args.published_file) if args.published or args.published_file else None
    text = markdown(runs, published, title=args.folder)
    out = Path(args.out or args.folder).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "report.md", text)
        atomic_write_text(out / "report.csv", csv_text(runs))
        chart = write_chart(forecast_tables(runs), out / "report.png")
    except OSError as err:
        raise UserError(f"cannot write the report into {out} ({err.strerror}); choose a folder with --out") from err
    print(text, end="")
    print(f"report: {out / 'report.md'}, {out / 'report.csv'}" + (f", {chart}" if chart else ""))
    return 0


def cmd_data(argv: list[str]) -> int:
    """`one4all data list|check|fetch`: the known datasets, verification of a data root, downloads on request."""
    parser = _Parser(prog="one4all data", description="Known benchmark datasets: list them, verify a data folder, "
                     "or download (only when asked) into one.")
    parser.add_argument("--registry", help="another registry file with the same schema (e.g. your mirror's URLs)")
    sub = parser.add_subparsers(dest="action", required=True, parser_class=_Parser)
    sub.add_parser("list", help="every known dataset: files, size, checksum, where the original lives")
    check = sub.add_parser("check", help="verify the files under a data root (size and sha256 / git blob id)")
    check.add_argument("names", nargs="*", help="datasets to check (default: all)")
    check.add_argument("--root", help="data root (default: $ONE4ALL_DATA_ROOT, else ../shared/data)")
    fetch = sub.add_parser("fetch", help="download datasets into a data root, verified before they are stored")
    fetch.add_argument("names", nargs="+", help="datasets to download (see `one4all data list`)")
    fetch.add_argument("--root", required=True, help="data root to store them in")
    fetch.add_argument("--allow-unverified", action="store_true",
                       help="also store files the registry has no checksum for (their sha256 is printed)")
    args = parser.parse_args(argv)
    from pathlib import Path

    from one4all.data.registry import load_registry, select, verify
    from one4all.paths import default_data_root

    registry = load_registry(args.registry)
    if args.action == "list":
        print("| dataset | config | file | bytes | checksum | download | source |\n|---|---|---|---:|---|---|---|")
        for dataset in registry.values():
            for spec in dataset.files:
                digest = (f"sha256 {spec.sha256[:16]}…" if spec.sha256 else
                          f"git blob {spec.git_blob[:16]}…" if spec.git_blob else "unknown (unverified)")
                size = f"{spec.bytes:,}" if spec.bytes is not None else "?"
                where = spec.url or f"no direct download: {dataset.original or dataset.page}"
                print(f"| {dataset.name} | {dataset.config or '–'} | {spec.path} | {size} | {digest} | {where} | "
                      f"{spec.source} |")
        return 0
    if args.action == "fetch":
        from one4all.data.fetch import fetch_dataset

        root = Path(args.root).expanduser()
        for dataset in select(registry, args.names):
            fetch_dataset(dataset, root, args.allow_unverified)
        return 0
    root = Path(args.root).expanduser() if args.root else default_data_root()
    if root is None or not root.is_dir():
        raise UserError(f"data root {root or '../shared/data'} is not a folder; pass --root DIR")
    counts: dict[str, int] = {}
    for dataset in select(registry, args.names):
        for spec in dataset.files:
            path = root / spec.path
            status, detail = verify(spec, path) if path.is_file() else ("missing", "not there")
            counts[status] = counts.get(status, 0) + 1
            print(f"{status:<10} {dataset.name:<16} {spec.path}: {detail}")
    print(f"{root}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if counts.get("failed"):
        print(f"{counts['failed']} file(s) fail verification (see above): replace them with `one4all data fetch` "
              "after moving them away", file=sys.stderr)
        return 1
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {"train": cmd_train, "forecast": cmd_forecast,
                                                   "backtest": cmd_backtest, "export": cmd_export,
                                                   "compare": cmd_compare, "report": cmd_report, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    setup_logging()
    try:
        code = COMMANDS[command](rest)
        notices.release()
        return code
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
