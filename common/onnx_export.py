"""ONNX export of a torch module, checked against eager outputs before it is kept.

Why: serving stacks without Python/torch run ONNX; an export that silently diverges from the
trained model is worse than none, so every export is run through onnxruntime on the example
inputs and rejected when any output differs by more than `atol` (+ `rtol` x |eager|).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3


class OnnxMismatchError(RuntimeError):
    pass


def export_onnx(module: torch.nn.Module, inputs: Mapping[str, torch.Tensor], path: str | Path,
                output_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]],
                atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, opset: int = 17) -> dict[str, float]:
    """Export `module(**inputs)` to `path` and return the max abs difference per output."""
    import onnxruntime as ort

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    module = module.eval()
    names = list(inputs)
    with torch.no_grad():
        eager = module(*inputs.values())
        eager = eager if isinstance(eager, (tuple, list)) else (eager,)
        torch.onnx.export(module, tuple(inputs.values()), str(tmp), input_names=names,
                          output_names=list(output_names), dynamic_axes=dict(dynamic_axes),
                          opset_version=opset, dynamo=False)
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = session.run(list(output_names), {k: v.numpy() for k, v in inputs.items()})
    diffs = {}
    for name, e, o in zip(output_names, eager, got):
        e = e.detach().numpy()
        diff = float(np.max(np.abs(e - o))) if e.size else 0.0
        diffs[name] = diff
        if not np.allclose(o, e, atol=atol, rtol=rtol):
            tmp.unlink(missing_ok=True)
            raise OnnxMismatchError(f"ONNX output '{name}' differs from eager by up to {diff:.2e} "
                                    f"(atol={atol}, rtol={rtol})")
    os.replace(tmp, path)
    return diffs
