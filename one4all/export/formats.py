"""Serialise an inference graph for a runtime: TorchScript (torch only) or ONNX (onnxruntime).

- TorchScript (`torch.jit.trace` -> `model.pt`, loaded by `torch.jit.load`): the one format that
  carries fp32, bf16/fp16 weights and dynamically quantised int8 linear layers and loads with torch
  alone. `torch.export` (`.pt2`) also loads with torch alone, but cannot serialise the packed
  weights of torch's dynamic int8 linear layers, so it would need a second format for int8.
- ONNX (`torch.onnx.export(dynamo=True)` -> `model.onnx`, run by onnxruntime): fp32, and int8 by
  onnxruntime's own dynamic quantiser (`quantize_dynamic`, int8 weights of MatMul/Gemm). bf16/fp16
  are refused: onnxruntime's CPU provider lacks low-precision kernels for much of this graph.

Dynamic int8 quantisation (weights int8 per tensor, activations quantised on the fly per batch)
applies to the linear layers only: the embedding, GPT-2's projections and the head, i.e. all but
LayerNorm parameters and the position rows.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from one4all.errors import UserError

FORMATS = {"torchscript": "model.pt", "onnx": "model.onnx"}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
QUANTIZE = ("int8",)


def check_options(fmt: str, dtype: str, quantize: str | None) -> None:
    """Refuse an unknown format/dtype/quantisation or a combination the runtime does not support."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise UserError(f"--quantize {quantize!r} is not supported; use {', '.join(QUANTIZE)} (or leave it out)")
    if quantize is not None and dtype != "fp32":
        raise UserError(f"--quantize {quantize} keeps fp32 activations; drop --dtype {dtype} (or --quantize)")
    if fmt == "onnx" and dtype != "fp32":
        raise UserError(f"--dtype {dtype} is not supported for ONNX (onnxruntime's CPU provider lacks the kernels); "
                        "use --format torchscript for bf16/fp16, or --quantize int8 for a smaller ONNX model")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The exporters' deprecation notices and progress lines are about their own internals.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "root")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def write_torchscript(graph: nn.Module, example: torch.Tensor, path: Path, dtype: str, quantize: str | None) -> None:
    """Trace `graph` (cast or dynamically quantised first) on `example` and save it to `path`."""
    with _quiet():
        if quantize == "int8":
            graph = torch.ao.quantization.quantize_dynamic(graph, {nn.Linear}, dtype=torch.qint8)
        else:
            graph = graph.to(DTYPES[dtype])
        with torch.no_grad():
            traced = torch.jit.trace(graph, example, check_trace=False)
        traced.save(str(path))


def write_onnx(graph: nn.Module, example: torch.Tensor, path: Path, quantize: str | None) -> None:
    """Export `graph` to ONNX with a dynamic batch axis (int8: then quantise its weights) at `path`."""
    try:
        import onnx  # noqa: F401  (the exporter and the quantiser need it)
        import onnxscript  # noqa: F401
        if quantize is not None:
            from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise UserError(f"--format onnx needs the onnx exporter packages ({err.name} is missing); "
                        "pip install 'one4all[export]'") from err
    batch = torch.export.Dim("batch")
    fp32 = path if quantize is None else path.with_name(f"fp32-{path.name}")
    with _quiet():
        program = torch.onnx.export(graph, (example,), dynamo=True, input_names=["x"], output_names=["forecast"],
                                    dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(fp32), external_data=False)
        if quantize is not None:
            try:
                quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8)
            finally:
                fp32.unlink()
