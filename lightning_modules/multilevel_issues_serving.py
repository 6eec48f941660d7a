"""Compatibility names for the issue model's serving code, which lives in `feedback_nlp.serving.issues`
(predictor, export format) and `feedback_nlp.nets.seq2seq` (decoding)."""
from __future__ import annotations

from pathlib import Path

from feedback_nlp.nets.seq2seq import generate_issue_sets, generation_kwargs
from feedback_nlp.serving.issues import LEVELS, SETTINGS_FILE, IssuePredictor
from feedback_nlp.serving.issues import load as _load
from feedback_nlp.serving.issues import write_export as export_hf_folder
from feedback_nlp.serving.runtime import RuntimeOptions

__all__ = ["LEVELS", "SETTINGS_FILE", "IssuePredictor", "export_hf_folder", "generate_issue_sets",
           "generation_kwargs", "load_predictor"]


def load_predictor(export_dir: str | Path, device: str = "cpu", batch_size: int = 16) -> IssuePredictor:
    """An `IssuePredictor` built only from `export_dir` (safetensors weights, no pickles)."""
    return _load(Path(export_dir), {}, RuntimeOptions(device=device, batch_size=batch_size))
