"""What a device carries and how fast it forecasts: the PyTorch run artifact vs each export, side by side.

    python scripts/bench_deploy.py --run RUN --csv ../shared/data/ETTh1/ETTh1.csv --out bench-deploy

RUN is a forecasting run on ETTh1 (the documented one: L=336, H=96, features S / target OT, see
docs/benchmarks.md). The script exports RUN once per variant into `--out` (TorchScript fp32, int8,
bf16; ONNX fp32, int8: the `[export]` extra), then measures every variant and the PyTorch
path (`ForecastModel.load` of the run: one4all, transformers, peft and the regenerated GPT-2) in a
fresh process per variant and thread count:

- bytes: the package folder (the run's `model/` folder for PyTorch), and the installed size of the
  Python distributions the variant imports (torch + numpy; onnxruntime + numpy; one4all and all of
  its dependencies);
- load: seconds from a bare interpreter to a model ready to run (imports included); peak RSS after
  loading, and after the batch-256 runs;
- latency p50/p99 of one series (batch 1) over `--reps` calls after 3 warm-up calls, and
  throughput (series/s) at batch `--batch`: on 1 thread 2 timed batches, on 2 threads the mean
  over the accuracy pass;
- accuracy on the full ETTh1 test split (every window, stride 1; scaled units as the papers), on
  2 threads: MSE of each variant, its change against the PyTorch path, and the max abs difference
  of the predictions.

Writes `--out/results.json` and prints the markdown table of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# "<format> <variant>": `one4all export --format <format>` with --quantize int8 or --dtype <variant>
EXPORTS = ("torchscript fp32", "torchscript int8", "onnx fp32", "onnx int8", "torchscript bf16")
PYTORCH = "pytorch (run artifact)"
RUNTIME_DISTS = {"torchscript": ["torch", "numpy"], "onnx": ["onnxruntime", "numpy"], "pytorch": ["one4all"]}


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def installed_bytes(roots: list[str]) -> int:
    """Installed size of `roots` and every distribution they require (markers evaluated, no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo, total = list(roots), 0
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total += sum(dist.locate_file(f).stat().st_size for f in dist.files or [] if dist.locate_file(f).is_file())
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return total


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: ru_maxrss survives exec, so a worker
    would report the parent's peak (the parent holds torch and the exports)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def worker(args: argparse.Namespace) -> None:
    """One variant on one thread count, in a fresh process: prints one JSON line."""
    start = time.perf_counter()
    if args.worker == PYTORCH:
        import torch

        from one4all.forecast import ForecastModel
        from one4all.inference import autocast

        torch.set_num_threads(args.threads[0])
        model = ForecastModel.load(args.run)

        def predict(x):
            with torch.inference_mode(), autocast(model.manifest.get("precision", "32-true")):
                return model.network(torch.from_numpy(x)).float().numpy()
    else:
        from one4all.deploy import Package  # imports numpy only; the runtime comes with load()

        predict = Package.load(args.package, threads=args.threads[0]).predict_scaled
    result = {"load_s": time.perf_counter() - start, "rss_load_mb": peak_rss_mb()}
    import numpy as np

    x = np.load(Path(args.out) / "test_x.npy")
    for _ in range(3):
        predict(x[:1])
    times = []
    for i in range(args.reps):
        t = time.perf_counter()
        predict(x[i % len(x):][:1])
        times.append(time.perf_counter() - t)
    result.update(p50_ms=1e3 * float(np.percentile(times, 50)), p99_ms=1e3 * float(np.percentile(times, 99)))
    if args.accuracy:
        parts, spent = [], []
        for i in range(0, len(x), args.batch):
            t = time.perf_counter()
            parts.append(predict(x[i:i + args.batch]))
            if len(parts[-1]) == args.batch:
                spent.append(time.perf_counter() - t)
        np.save(Path(args.out) / f"pred-{args.tag}.npy", np.concatenate(parts))
    else:
        spent = []
        for _ in range(2):
            t = time.perf_counter()
            predict(x[:args.batch])
            spent.append(time.perf_counter() - t)
    result.update(series_per_s=args.batch * len(spent) / sum(spent), rss_peak_mb=peak_rss_mb())
    print(json.dumps(result))


def test_windows(run: Path, csv: Path, out: Path, stride: int = 1) -> int:
    """The run's test split as scaled windows test_x[N, L, 1] / test_y[N, H] (one per target channel),
    every `stride`-th window (1: all of them, the full split)."""
    import numpy as np

    from one4all.data.formats.table import read_table
    from one4all.data.splits import make_borders, scheme_for_file
    from one4all.forecast import ForecastModel

    model = ForecastModel.load(run)
    schema = model.schema
    table = read_table(csv, columns=model.columns)
    scaled = (table.values.astype(np.float64) - np.asarray(schema["scaler"]["mean"])) / np.asarray(
        schema["scaler"]["std"])
    start, end = make_borders(scheme_for_file(csv.name), table.n_rows, model.seq_len, model.horizon).test
    length, horizon = model.seq_len, model.horizon
    xs, ys = [], []
    for channel in schema["target_channels"]:
        series = scaled[start:end, channel].astype(np.float32)
        starts = range(0, len(series) - length - horizon + 1, stride)
        xs.append(np.stack([series[i:i + length] for i in starts])[..., None])
        ys.append(np.stack([series[i + length:i + length + horizon] for i in starts]))
    np.save(out / "test_x.npy", np.concatenate(xs))
    np.save(out / "test_y.npy", np.concatenate(ys))
    return sum(len(x) for x in xs)


def measure(args: argparse.Namespace, label: str, package: Path | None, threads: int, tag: str) -> dict:
    command = [sys.executable, __file__, "--worker", label, "--run", str(args.run), "--out", str(args.out),
               "--threads", str(threads), "--reps", str(args.reps), "--batch", str(args.batch), "--tag", tag]
    if package is not None:
        command += ["--package", str(package)]
    if threads == max(args.threads):
        command.append("--accuracy")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{label} on {threads} thread(s) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--csv", type=Path, default=Path("../shared/data/ETTh1/ETTh1.csv"))
    parser.add_argument("--out", type=Path, default=Path("bench-deploy"))
    parser.add_argument("--variants", default=",".join([PYTORCH, *EXPORTS]),
                        help="comma-separated labels; the PyTorch path first makes it the accuracy reference")
    parser.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--window-stride", type=int, default=1,
                        help="score every k-th test window (default 1: the full test split)")
    parser.add_argument("--table", type=Path, help="print the table of a results.json (e.g. of a partial run)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--package", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--accuracy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.table:
        saved = json.loads(args.table.read_text())
        print(table(saved["rows"], args.threads, saved["windows"]))
        return None
    import numpy as np

    from one4all.export import export_run

    args.out.mkdir(parents=True, exist_ok=True)
    windows = test_windows(args.run, args.csv, args.out, args.window_stride)
    y = np.load(args.out / "test_y.npy")
    labels = args.variants.split(",")
    rows, reference = [], None
    for index, label in enumerate(labels):
        package = None
        if label != PYTORCH:
            package = args.out / f"pkg{index}"
            if not package.exists():
                fmt, variant = label.split()
                export_run(args.run, package, fmt, "bf16" if variant == "bf16" else "fp32",
                           "int8" if variant == "int8" else None)
        row = {"variant": label, "bytes": folder_bytes(package or args.run / "model"),
               "runtime_bytes": installed_bytes(RUNTIME_DISTS[label.split()[0]])}
        for threads in args.threads:
            row[f"threads_{threads}"] = measure(args, label, package, threads, f"pkg{index}")
        pred = np.load(args.out / f"pred-pkg{index}.npy")[..., 0]
        row["mse"] = float(((pred - y) ** 2).mean())
        if label == PYTORCH:
            reference = (pred, row["mse"])
        elif reference is not None:
            row["mse_change_pct"] = 100 * (row["mse"] / reference[1] - 1)
            row["max_abs_diff"] = float(np.abs(pred - reference[0]).max())
        rows.append(row)
        # Saved after every variant: a long run keeps what it has measured.
        (args.out / "results.json").write_text(json.dumps({"windows": windows, "rows": rows}, indent=2))
        print(f"measured {label}", file=sys.stderr, flush=True)
    print(table(rows, args.threads, windows))


def table(rows: list[dict], threads: list[int], windows: int) -> str:
    """The markdown table of docs/benchmarks.md."""
    head = ["variant", "package MB", "runtime MB", "load s", "RSS load MB"]
    for t in threads:
        head += [f"p50 ms ({t}t)", f"p99 ms ({t}t)", f"series/s b256 ({t}t)"]
    head += [f"peak RSS MB ({max(threads)}t)", f"test MSE ({windows} windows)", "MSE change", "max abs diff"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        first = row[f"threads_{threads[0]}"]
        cells = [row["variant"], f"{row['bytes'] / 1e6:.2f}", f"{row['runtime_bytes'] / 1e6:.0f}",
                 f"{first['load_s']:.2f}", f"{first['rss_load_mb']:.0f}"]
        for t in threads:
            run = row[f"threads_{t}"]
            cells += [f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}", f"{run['series_per_s']:.1f}"]
        change = row.get("mse_change_pct")
        cells += [f"{row[f'threads_{max(threads)}']['rss_peak_mb']:.0f}", f"{row['mse']:.6f}",
                  "—" if change is None or row["variant"] == PYTORCH else f"{change:+.3f}%",
                  "—" if row["variant"] == PYTORCH or "max_abs_diff" not in row else f"{row['max_abs_diff']:.2e}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
