"""The one ONNX exporter: every graph is checked with onnxruntime before it is kept.

Why one: an ONNX file that silently differs from the trained model is worse than none. Each
task's predictor describes its graphs (`onnx_graphs()`: the module, an example batch, and check
batches of OTHER shapes, so a shape baked in at trace time is caught); this module exports each
to a temp file, runs it through onnxruntime on every batch, compares with eager PyTorch and
renames it into place only when all outputs agree within `atol` + `rtol` x |eager|.
HF encoders and the seq2seq pieces go through torch.onnx's TorchScript exporter with dynamic
axes; SeaCat's custom graph (index_copy over a sentence grid) needs the dynamo exporter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from feedback_nlp.core.errors import UserError

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
OPSET = 17


class OnnxMismatchError(UserError, RuntimeError):
    pass


@dataclass
class OnnxGraph:
    """One graph to export: `module(*example.values())`, with named inputs and outputs."""

    file: str
    module: torch.nn.Module
    example: Mapping[str, torch.Tensor]
    output_names: Sequence[str]
    checks: Sequence[Mapping[str, torch.Tensor]] = ()
    dynamic_axes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)  # TorchScript exporter
    dynamic_shapes: Mapping[str, Any] | None = None  # dynamo exporter


def _eager(module: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*inputs.values())
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().float().cpu().numpy() for o in out]


def export_graph(
    graph: OnnxGraph, out_dir: Path, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, opset: int = OPSET
) -> float:
    """Write `out_dir/graph.file`; return the largest |onnx - eager| over all check batches."""
    import onnxruntime as ort

    path = Path(out_dir) / graph.file
    tmp = path.with_name(f".{path.name}.tmp")
    module = graph.module.eval()
    names = list(graph.example)
    args = tuple(v.cpu() for v in graph.example.values())
    with torch.no_grad():
        if graph.dynamic_shapes is not None:
            torch.onnx.export(
                module,
                args,
                str(tmp),
                input_names=names,
                output_names=list(graph.output_names),
                dynamic_shapes=dict(graph.dynamic_shapes),
                dynamo=True,
                verbose=False,
                external_data=False,
            )
        else:
            torch.onnx.export(
                module,
                args,
                str(tmp),
                input_names=names,
                output_names=list(graph.output_names),
                dynamic_axes=dict(graph.dynamic_axes),
                opset_version=opset,
                dynamo=False,
            )
    try:
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        wanted = {i.name for i in session.get_inputs()}
        diff = 0.0
        for batch in (graph.example, *graph.checks):
            shapes = {k: tuple(v.shape) for k, v in batch.items()}
            try:
                got = session.run(
                    list(graph.output_names), {k: v.cpu().numpy() for k, v in batch.items() if k in wanted}
                )
            except Exception as err:  # onnxruntime's own error types: a shape baked in at export time
                raise OnnxMismatchError(
                    f"{graph.file}: onnxruntime fails on a batch of shape {shapes}: {str(err).splitlines()[0][:300]}"
                ) from None
            for name, e, o in zip(graph.output_names, _eager(module, batch), got):
                d = float(np.max(np.abs(e - o))) if e.size else 0.0
                diff = max(diff, d)
                if e.shape != o.shape or not np.allclose(o, e, atol=atol, rtol=rtol):
                    raise OnnxMismatchError(
                        f"{graph.file}: output '{name}' differs from eager PyTorch by up to "
                        f"{d:.2e} (atol={atol}, rtol={rtol}) on a batch of shape {shapes}"
                    )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return diff


def export_graphs(
    graphs: Sequence[OnnxGraph], out_dir: Path, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL
) -> dict[str, Any]:
    """Export every graph; return the manifest fields (`onnx`: file -> max abs diff)."""
    diffs = {g.file: export_graph(g, out_dir, atol, rtol) for g in graphs}
    return {"onnx": {"files": diffs, "atol": atol, "rtol": rtol, "opset": OPSET}}


def export_for_task(
    export_dir: Path, fields: Mapping[str, Any], atol: float = DEFAULT_ATOL, examples: Sequence[Any] = ()
) -> dict[str, Any]:
    """ONNX graphs of an export folder's model, parity-checked against the torch model loaded
    from the same folder (so the check covers the exported weights, not the training module)."""
    import importlib

    from feedback_nlp.serving.registry import REGISTRY
    from feedback_nlp.serving.runtime import RuntimeOptions

    module_name, fn_name, _ = REGISTRY[fields["task"]]
    predictor = getattr(importlib.import_module(module_name), fn_name)(Path(export_dir), dict(fields), RuntimeOptions())
    graphs = predictor.onnx_graphs(examples) if examples else predictor.onnx_graphs()
    return export_graphs(graphs, Path(export_dir), atol)


def session(path: Path, providers: Sequence[str]) -> Any:
    """An onnxruntime session, with a clear error when the export has no such graph."""
    import onnxruntime as ort

    from feedback_nlp.serving.manifest import ExportError

    if not path.is_file():
        raise ExportError(f"{path.parent}: no {path.name}; export with `export --onnx` to serve --backend onnx")
    available = set(ort.get_available_providers())
    return ort.InferenceSession(
        str(path), providers=[p for p in providers if p in available] or ["CPUExecutionProvider"]
    )
