"""Serve the multi-level issue model (000): L-Coarse and L-Granular issue sets per feedback.

Why: litgpt's lesson (STYLE.md): an export must be everything serving needs: weights
(safetensors), tokenizer, generation config (beam 2, length penalty 2.5, 000 App. C) and the
task settings (prefixes, max lengths) in one folder, read without unpickling anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.core.model_factory import save_tokenizer
from feedback_nlp.core.vocabulary import ISSUE_LEVELS
from feedback_nlp.nets.multilevel_issues import (
    Seq2SeqDecoderInit,
    Seq2SeqDecoderWithPast,
    Seq2SeqEncoder,
    generate_issue_sets,
    generation_kwargs,
    past_names,
)
from feedback_nlp.serving.manifest import ExportError
from feedback_nlp.serving.onnx_export import OnnxGraph
from feedback_nlp.serving.runtime import RuntimeOptions
from feedback_nlp.serving.text_batches import chunks

SETTINGS_FILE = "issue_task.json"
LEVELS = ISSUE_LEVELS
ENCODER_ONNX, DECODER_ONNX, DECODER_PAST_ONNX = (
    "seq2seq_encoder.onnx",
    "seq2seq_decoder.onnx",
    "seq2seq_decoder_with_past.onnx",
)
PROBE = ["The zipper broke after one week.", "Delivery was late and the box was damaged, I want a refund."]
OTHER = ["ok", "Too small.", "The colour is different from the picture and it smells."]


def write_export(
    model: Any,
    tokenizer: Any,
    out_dir: Path,
    task: str,
    prefixes: Mapping[str, str],
    max_source_length: int,
    max_target_length: int,
) -> dict[str, Any]:
    """Write the folder and return the manifest fields describing it."""
    from feedback_nlp.core.io import atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # transformers >= 5 always writes safetensors
    save_tokenizer(tokenizer, out_dir)
    model.generation_config.save_pretrained(out_dir)
    fields = {
        "task": task,
        "prefixes": {lvl: prefixes[lvl] for lvl in LEVELS},
        "issue_separator": ", ",
        "max_source_length": max_source_length,
        "max_target_length": max_target_length,
        "generation": generation_kwargs(model.generation_config),
        "model_type": model.config.model_type,
        "weights_format": "safetensors",
        "settings_file": SETTINGS_FILE,
    }
    atomic_write_json(out_dir / SETTINGS_FILE, fields)
    return fields


class MultilevelIssuesPredictor:
    """Batched L-Coarse + L-Granular issue prediction; rows {"id", "coarse", "granular"}."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        settings: Mapping[str, Any],
        device: str = "cpu",
        batch_size: int = 16,
        options: RuntimeOptions | None = None,
    ):
        self.options = options or RuntimeOptions(device=device, batch_size=batch_size)
        self.model = model.to(device=self.options.device, dtype=self.options.torch_dtype()).eval()
        self.tokenizer, self.settings = tokenizer, dict(settings)
        self.device, self.batch_size = self.options.device, self.options.batch_size
        self.kwargs = dict(settings["generation"])

    def sources(self, records: Sequence[Any]) -> list[str]:
        return [self.settings["prefixes"][lvl] + r.text for lvl in LEVELS for r in records]

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in chunks(records, self.batch_size):
            enc = self.tokenizer(
                self.sources(chunk),
                max_length=self.settings["max_source_length"],
                truncation=True,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            sets = generate_issue_sets(self.model, self.tokenizer, enc["input_ids"], enc["attention_mask"], self.kwargs)
            n = len(chunk)
            rows += [{"id": r.id, "coarse": sets[i], "granular": sets[n + i]} for i, r in enumerate(chunk)]
        return rows

    def onnx_graphs(self, texts: Sequence[str] = ()) -> list[OnnxGraph]:
        """Encoder, first decoder step (-> key/value cache) and decoder step with the cache, each
        checked on batches of another shape (batch size, source length and cache length)."""
        import torch

        model = self.model.float().cpu().eval()
        n = self.settings["max_source_length"]

        def enc(t: Sequence[str]) -> dict[str, Any]:
            e = self.tokenizer(list(t), max_length=n, truncation=True, padding=True, return_tensors="pt")
            return {"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]}

        encoder, init = Seq2SeqEncoder(model).eval(), Seq2SeqDecoderInit(model).eval()
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        vocab = len(self.tokenizer)

        def dec(e: dict[str, Any], steps: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
            """(init inputs of `steps` tokens, with-past inputs: one more token + the init's cache)."""
            with torch.no_grad():
                states = encoder(**e)
            g = torch.Generator().manual_seed(seed)
            ids = torch.randint(0, vocab, (states.shape[0], steps + 1), generator=g)
            ids[:, 0] = start
            first = {
                "decoder_input_ids": ids[:, :steps],
                "encoder_hidden_states": states,
                "attention_mask": e["attention_mask"],
            }
            with torch.no_grad():
                cache = init(**first)[1:]
            names = past_names(len(cache) // 4)
            return first, {
                **first,
                "decoder_input_ids": ids[:, steps:],
                **dict(zip(["past." + k for k in names], cache)),
            }

        src, other = enc(list(texts) or PROBE), enc(OTHER)
        (first, step), (first2, step2) = dec(src, 3, 0), dec(other, 5, 1)
        n_layers = (len(step) - 3) // 4
        seq = {0: "batch", 1: "source"}
        cache_axes = {
            f"{p}.{k}": {0: "batch", 2: "past" if k.startswith("self") else "source"}
            for p in ("past", "present")
            for k in past_names(n_layers)
        }
        full, selfs = past_names(n_layers), past_names(n_layers, cross=False)
        return [
            OnnxGraph(
                ENCODER_ONNX,
                encoder,
                src,
                ["encoder_hidden_states"],
                checks=[other],
                dynamic_axes={"input_ids": seq, "attention_mask": seq, "encoder_hidden_states": seq},
            ),
            OnnxGraph(
                DECODER_ONNX,
                init,
                first,
                ["logits", *("present." + k for k in full)],
                checks=[first2],
                dynamic_axes={
                    "decoder_input_ids": {0: "batch", 1: "target"},
                    "encoder_hidden_states": seq,
                    "attention_mask": seq,
                    "logits": {0: "batch", 1: "target"},
                    **{f"present.{k}": {0: "batch", 2: "target" if k.startswith("self") else "source"} for k in full},
                },
            ),
            OnnxGraph(
                DECODER_PAST_ONNX,
                Seq2SeqDecoderWithPast(model, n_layers).eval(),
                step,
                ["logits", *("present." + k for k in selfs)],
                checks=[step2],
                dynamic_axes={
                    "decoder_input_ids": {0: "batch"},
                    "encoder_hidden_states": seq,
                    "attention_mask": seq,
                    "logits": {0: "batch"},
                    **{k: v for k, v in cache_axes.items() if k.startswith("past.")},
                    **{f"present.{k}": {0: "batch", 2: "past"} for k in selfs},
                },
            ),
        ]


def load(export_dir: Path, manifest: Mapping[str, Any], options: RuntimeOptions) -> MultilevelIssuesPredictor:
    """An `MultilevelIssuesPredictor` built only from `export_dir` (safetensors weights, no pickles)."""
    from feedback_nlp.core.model_factory import load_model, load_tokenizer

    export_dir = Path(export_dir)
    if options.backend == "onnx":
        raise ExportError(
            "multilevel_issues serves with --backend torch only: beam search (000 App. C) runs in "
            "transformers' generate; the export's ONNX encoder/decoder graphs are for other runtimes"
        )
    settings_path = export_dir / SETTINGS_FILE
    if not settings_path.is_file():
        raise ExportError(f"{export_dir} is not a multilevel-issues export (no {SETTINGS_FILE})")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    model = load_model("AutoModelForSeq2SeqLM", str(export_dir), use_safetensors=True)
    tokenizer = load_tokenizer(str(export_dir))
    return MultilevelIssuesPredictor(model, tokenizer, settings, options=options)
