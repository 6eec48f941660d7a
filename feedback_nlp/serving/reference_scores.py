"""The score sample an export was tested with: the reference that `monitor` measures drift against.

Why a file of its own (`reference_scores.json`) and not manifest fields: the test runs after the
export is written (train.py: fit -> export -> test), so the sample is added afterwards, and a
re-export from the run directory (`feedback-nlp export --run-dir`) copies the run's copy in.
It is hashed with the export's other files (`files_sha256`: a changed sample is refused like a
changed weight) but left out of `model_version`: it describes the model, it does not change
what it predicts, so the log's rows and the export still name one version.

Format: {"task", "score" (the row field it samples), "seed", "max_per_language",
"splits": {split: {language: [score, ...]}}} with splits "test" (001 §4.1's labelled
last month) and "traffic" (the unlabelled production-like comments) where the run had them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.serving.manifest import REFERENCE_FILE, ExportError

MAX_PER_LANGUAGE = 2000


def reference_sample(
    task: str,
    score: str,
    scores: Any,
    languages: Sequence[str],
    splits: Mapping[str, Any],
    max_per_language: int = MAX_PER_LANGUAGE,
    seed: int = 0,
) -> dict[str, Any]:
    """Per split (a boolean mask) and language, at most `max_per_language` scores, drawn with `seed`."""
    p, lang = np.asarray(scores, dtype=np.float64), np.asarray(languages, dtype=object)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, list[float]]] = {}
    for split, mask in splits.items():
        m = np.asarray(mask, dtype=bool)
        by_lang: dict[str, list[float]] = {}
        for code in sorted({str(x) for x in lang[m]}):
            values = p[m & (lang == code)]
            if values.size > max_per_language:
                values = rng.choice(values, max_per_language, replace=False)
            by_lang[code] = [round(float(v), 6) for v in np.sort(values)]
        if by_lang:
            out[split] = by_lang
    return {"task": task, "score": score, "seed": seed, "max_per_language": max_per_language, "splits": out}


def read_reference(export_dir: str | Path) -> dict[str, Any] | None:
    """The export's reference sample, or None when it has none."""
    path = Path(export_dir) / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        sample = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(sample, dict) or not isinstance(sample.get("splits"), dict):
        raise ExportError(f"{path}: expected an object with 'splits'")
    return sample
