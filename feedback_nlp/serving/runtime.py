"""Where and how a predictor runs: device, dtype and backend, checked before anything loads.

Why: `--device auto` must mean the same in predict.py and the server, and a combination that
cannot work (fp16 on CPU, ONNX in bf16, CUDA on a machine without it) must be a clear error
at start-up, not a slow failure on the first request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a dtype is asked for, not with the options
    import torch

from feedback_nlp.core.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("fp32", "bf16", "fp16")
BACKENDS = ("torch", "onnx")


class RuntimeOptionError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class RuntimeOptions:
    """How a predictor runs (`predict` / `serve` flags, checked by `resolve`).

    Args:
        device: cpu, cuda or cuda:N (the flags' auto is resolved to one of these).
        dtype: Weights and activations of the torch backend: fp32, bf16 or fp16 (CUDA only).
        backend: torch (eager) or onnx (the export's ONNX graph, fp32).
        batch_size: Records per forward pass.
    """

    device: str = "cpu"
    dtype: str = "fp32"
    backend: str = "torch"
    batch_size: int = 32

    def torch_dtype(self) -> torch.dtype:
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.dtype]

    def onnx_providers(self) -> list[str]:
        return (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if self.device.startswith("cuda")
            else ["CPUExecutionProvider"]
        )


def resolve(device: str = "auto", dtype: str = "fp32", backend: str = "torch", batch_size: int = 32) -> RuntimeOptions:
    """Check the flags and turn `auto` into the device this machine has."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise RuntimeOptionError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {device!r}")
    if dtype not in DTYPES:
        raise RuntimeOptionError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if backend not in BACKENDS:
        raise RuntimeOptionError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RuntimeOptionError(f"--batch-size must be a positive integer, got {batch_size!r}")
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeOptionError(f"--device {device}: CUDA is not available on this machine")
    if dtype == "fp16" and device == "cpu":
        raise RuntimeOptionError(
            "--dtype fp16 needs --device cuda (CPU kernels for fp16 are slow or missing); use bf16 or fp32 on CPU"
        )
    if backend == "onnx" and dtype != "fp32":
        raise RuntimeOptionError(
            f"--backend onnx runs the exported fp32 graph; --dtype {dtype} applies to --backend torch only"
        )
    return RuntimeOptions(device, dtype, backend, batch_size)
