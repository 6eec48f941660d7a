"""Decode issue sets, export a self-contained HF folder, and serve it without Lightning (000).

Why: litgpt's lesson (STYLE.md) — an export must be everything serving needs: weights
(safetensors), tokenizer, generation config (beam 2, length penalty 2.5, 000 App. C) and the task
settings (prefixes, max lengths) in one folder. `load_predictor` reads ONLY that folder: no
Lightning checkpoint, no unpickling, so serving cannot run code hidden in a checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from feedback_nlp.metrics.issue_sets import parse_issues

SETTINGS_FILE = "issue_task.json"
LEVELS = ("coarse", "granular")


def generation_kwargs(config: Any) -> dict[str, Any]:
    """The decoding settings taken from a generation config (what the export also carries)."""
    out = {"num_beams": config.num_beams or 1, "length_penalty": config.length_penalty,
           "max_new_tokens": config.max_new_tokens}
    if config.no_repeat_ngram_size:
        out["no_repeat_ngram_size"] = config.no_repeat_ngram_size
    if out["num_beams"] > 1:
        out["early_stopping"] = True
    return out


@torch.no_grad()
def generate_issue_sets(model: Any, tokenizer: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        kwargs: Mapping[str, Any]) -> list[list[str]]:
    """HF `generate` -> text -> issue set per row (split on commas, trimmed, de-duplicated)."""
    was_training = model.training
    model.eval()
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    if was_training:
        model.train()
    return [parse_issues(t) for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


def export_hf_folder(model: Any, tokenizer: Any, out_dir: Path, task: str, prefixes: Mapping[str, str],
                     max_source_length: int, max_target_length: int) -> dict[str, Any]:
    """Write the folder and return the manifest fields describing it."""
    from feedback_nlp.common.io import atomic_write_json
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # transformers >= 5 always writes safetensors
    tokenizer.save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)
    fields = {"task": task, "prefixes": {lvl: prefixes[lvl] for lvl in LEVELS},
              "issue_separator": ", ", "max_source_length": max_source_length,
              "max_target_length": max_target_length, "generation": generation_kwargs(model.generation_config),
              "model_type": model.config.model_type, "weights_format": "safetensors",
              "settings_file": SETTINGS_FILE}
    atomic_write_json(out_dir / SETTINGS_FILE, fields)
    return fields


class IssuePredictor:
    """Batched L-Coarse + L-Granular issue prediction from an export folder."""

    def __init__(self, model: Any, tokenizer: Any, settings: Mapping[str, Any], device: str = "cpu",
                 batch_size: int = 16):
        self.model, self.tokenizer, self.settings = model.to(device).eval(), tokenizer, dict(settings)
        self.device, self.batch_size = device, batch_size
        self.kwargs = dict(settings["generation"])

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows {"id", "coarse", "granular"} in input order; records need `.id` and `.text`."""
        rows: list[dict[str, Any]] = []
        prefixes = self.settings["prefixes"]
        for start in range(0, len(records), self.batch_size):
            chunk = records[start:start + self.batch_size]
            sources = [prefixes[lvl] + r.text for lvl in LEVELS for r in chunk]
            enc = self.tokenizer(sources, max_length=self.settings["max_source_length"], truncation=True,
                                 padding=True, return_tensors="pt").to(self.device)
            sets = generate_issue_sets(self.model, self.tokenizer, enc["input_ids"], enc["attention_mask"],
                                       self.kwargs)
            n = len(chunk)
            rows += [{"id": r.id, "coarse": sets[i], "granular": sets[n + i]} for i, r in enumerate(chunk)]
        return rows


def load_predictor(export_dir: str | Path, device: str = "cpu", batch_size: int = 16) -> IssuePredictor:
    """An `IssuePredictor` built only from `export_dir` (safetensors weights, no pickles)."""
    from feedback_nlp.common.model_factory import load_model, load_tokenizer
    export_dir = Path(export_dir)
    settings_path = export_dir / SETTINGS_FILE
    if not settings_path.is_file():
        raise FileNotFoundError(f"{export_dir} is not a multilevel-issues export (no {SETTINGS_FILE})")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    model = load_model("AutoModelForSeq2SeqLM", str(export_dir), use_safetensors=True)
    tokenizer = load_tokenizer(str(export_dir))
    return IssuePredictor(model, tokenizer, settings, device, batch_size)
