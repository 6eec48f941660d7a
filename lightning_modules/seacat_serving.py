"""SeaCat's training-side export and checkpoint loading; the predictor lives in `feedback_nlp.serving.seacat`.

Why kept here: `load_predictor_from_checkpoint` needs the LightningModule (a checkpoint is
training state), which serving must not import; the question-repository builder uses it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.serving.seacat import ONNX_FILE, ONNX_TOLERANCE, SeaCatPredictor, write_export

__all__ = ["ONNX_FILE", "ONNX_TOLERANCE", "SeaCatPredictor", "export_seacat", "load_predictor_from_checkpoint"]


def settings_of(module: Any) -> dict[str, Any]:
    hp = module.hparams
    return {"task": module.task, "labels": list(module.labels), "max_sentences": hp.max_sentences,
            "max_tokens": hp.max_tokens, "pooling": hp.pooling, "position_embedding": hp.position_embedding,
            "main_question_window": hp.main_question_window, "pretrained": hp.pretrained}


def export_seacat(module: Any, out_dir: Path, onnx_examples: Sequence[Any] = ()) -> dict[str, Any]:
    """Write the serving folder (serving/seacat.py's format); with example transcripts, also
    seacat.onnx, checked against the torch model loaded back from the folder."""
    fields = write_export(Path(out_dir), module.net, module.tokenizer, settings_of(module))
    if onnx_examples:
        from feedback_nlp.serving.onnx_export import export_for_task
        fields.update(export_for_task(Path(out_dir), fields, ONNX_TOLERANCE, onnx_examples))
    return fields


def load_predictor_from_checkpoint(path: str | Path, batch_size: int = 16) -> SeaCatPredictor:
    """A predictor from a Lightning checkpoint, read with weights_only=True (no code runs)."""
    from feedback_nlp.common.checkpoints import check_checkpoint
    from feedback_nlp.lightning_modules.seacat import SeaCat

    ckpt = check_checkpoint(path, SeaCat)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    module = SeaCat(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    module.load_state_dict(ckpt["state_dict"])
    return SeaCatPredictor(module.net.eval(), module.tokenizer, settings_of(module), batch_size)
