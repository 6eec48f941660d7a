"""A SeaCat predictor from a Lightning checkpoint; the predictor itself lives in `feedback_nlp.serving.seacat`.

Why here: a checkpoint is training state, so reading one needs the LightningModule, which
serving must not import; the question-repository builder uses it. (The export is the module's
own `export_for_serving`.)
"""

from __future__ import annotations

from pathlib import Path

from feedback_nlp.serving.seacat import ONNX_FILE, ONNX_TOLERANCE, SeaCatPredictor

__all__ = ["ONNX_FILE", "ONNX_TOLERANCE", "SeaCatPredictor", "load_predictor_from_checkpoint"]


def load_predictor_from_checkpoint(path: str | Path, batch_size: int = 16) -> SeaCatPredictor:
    """A predictor from a Lightning checkpoint, read with weights_only=True (no code runs)."""
    from feedback_nlp.lightning_modules.seacat import SeaCat
    from feedback_nlp.training.checkpoints import check_checkpoint

    ckpt = check_checkpoint(path, SeaCat)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    module = SeaCat(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    module.load_state_dict(ckpt["state_dict"])
    return SeaCatPredictor(module.net.eval(), module.tokenizer, module.serving_settings(), batch_size)
