"""Check a checkpoint before Lightning loads it.

Why: a truncated file or one written by another task otherwise fails deep inside torch with
an unreadable traceback; here it fails with the path and what is wrong. Loading uses
`weights_only=True`, so a checkpoint can never run arbitrary code by unpickling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import UserError


class CheckpointError(UserError, RuntimeError):
    pass


def check_checkpoint(path: str | Path, model_cls: Any) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupt?): "
            f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"checkpoint {path} has no state_dict: not a Lightning checkpoint")
    task = ckpt.get("task") or (ckpt.get("hyper_parameters") or {}).get("task")
    want = getattr(model_cls, "task", None)
    if want and task and task != want:
        raise CheckpointError(f"checkpoint {path} was written by task '{task}', but this experiment trains '{want}'")
    return ckpt
