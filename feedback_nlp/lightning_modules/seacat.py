"""SeaCat: Sentence Attention of Customer-Agent Transcript (002 §2.2-2.4).

Why: the customer's main question is the sentence a product/service classifier relies on most
(002 §2.2). SeaCat embeds every sentence with a pretrained encoder (time-distributed: one
sentence per step), adds a sinusoidal embedding of its offset from the agent's first sentence
(§2.3), and pools the sentences with softmax attention against one learned key vector
(eq. 1: a = softmax(E k), v = sum_i a_i E_i) before a dense softmax over the labels. The
attention weights then tag the main question (§2.4, `main_question.py`).

Only the real sentences go through the encoder: the collate function hands over one flat,
deduplicated block of them and the index map back into the (batch, sentence) grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, SumMetric
from torchmetrics.classification import MulticlassAccuracy

from feedback_nlp.core.model_factory import load_encoder, load_tokenizer
from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.metrics.module_map import ModuleMap
from feedback_nlp.nets.main_question import rule_accuracy
from feedback_nlp.nets.seacat import NET_INPUTS, POOLINGS, SeaCatNet, prediction_rows

__all__ = ["NET_INPUTS", "POOLINGS", "SeaCat", "SeaCatNet", "encoder_layers", "freeze_lower_layers", "prediction_rows"]
EXAMPLE_COLUMNS = ("transcript", "sentence", "offset", "speaker", "text", "weight", "rule1", "rule2", "annotated")


def encoder_layers(encoder: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """(embeddings, transformer layers) of a BERT-like or DistilBERT-like HF encoder."""
    for path in ("encoder.layer", "transformer.layer", "layers", "layer"):
        obj: Any = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, nn.ModuleList):
            embeddings = encoder.embeddings
            if not isinstance(embeddings, nn.Module):
                raise ValueError(f"freeze_layers: {type(encoder).__name__}.embeddings is not a module")
            return embeddings, list(obj)
    raise ValueError(f"freeze_layers: don't know the layers of {type(encoder).__name__}")


def freeze_lower_layers(encoder: nn.Module, n: int) -> None:
    """Freeze embeddings + the lowest `n` layers (n < 0: the whole encoder). Saves the
    backward pass through them: autograd only starts at the first trainable layer."""
    if n == 0:
        return
    if n < 0:
        encoder.requires_grad_(False)
        return
    embeddings, layers = encoder_layers(encoder)
    for module in [embeddings, *layers[:n]]:
        module.requires_grad_(False)


class SeaCat(TaskModule):
    """002 §2.2-2.4: sentence encoder + position embedding + attention pooling -> label softmax.

    Args:
        labels: Product/service classes (from the DataModule's task_info).
        pretrained: Sentence encoder name or folder (Hugging Face).
        max_sentences: Sentences per transcript the position embedding covers (the DataModule's cut).
        max_tokens: Tokens per sentence.
        pooling: How a sentence's token states become its vector: mean or cls.
        position_embedding: Add the sinusoidal offset from the agent's first sentence (002 §2.3).
        main_question_window: Rule 2 picks among customer sentences at most this far from the agent's first (002 §2.4).
        freeze_layers: Freeze the embeddings and this many lowest encoder layers (-1: the whole encoder).
        dropout: Dropout on the pooled transcript vector before the classifier.
        embedding_cache_size: Sentence embeddings cached across steps while the encoder is frozen (0: off).
        head_lr: Learning rate of the new layers (key vector, classifier; null: optim.lr).
        log_examples: Test transcripts logged with their sentence weights (W&B table).
    """

    task = "seacat"
    optim_defaults = {"lr": 5e-5, "weight_decay": 0.01}

    def __init__(
        self,
        labels: list[str] | None = None,
        pretrained: str = "packaged:all-MiniLM-L6-v2",
        max_sentences: int = 64,
        max_tokens: int = 128,
        pooling: str = "mean",
        position_embedding: bool = True,
        main_question_window: int = 2,
        freeze_layers: int = 0,
        dropout: float = 0.1,
        embedding_cache_size: int = 0,
        head_lr: float | None = None,
        log_examples: int = 8,
        optim: Mapping[str, Any] | None = None,
    ):
        super().__init__(optim, **self.optim_defaults)
        if not labels:
            raise ValueError("SeaCat needs the label list (the data module's task_info provides it)")
        self.save_hyperparameters()
        self.labels = list(labels)
        self.window, self.head_lr, self.log_examples = main_question_window, head_lr, log_examples
        self.pretrained, self.max_sentences, self.max_tokens = pretrained, max_sentences, max_tokens
        self.pooling, self.position_embedding = pooling, position_embedding
        self.tokenizer = load_tokenizer(pretrained)
        encoder = load_encoder(pretrained)
        freeze_lower_layers(encoder, freeze_layers)
        self.net = SeaCatNet(
            encoder, len(labels), max_sentences, pooling, position_embedding, dropout, embedding_cache_size
        )
        n = len(labels)
        self.acc = ModuleMap({s: MulticlassAccuracy(num_classes=n, average="micro") for s in ("val", "test")})
        self.loss_mean = ModuleMap({s: MeanMetric() for s in ("val", "test")})
        self.rule_counts = ModuleMap(
            {f"{s}_{k}": SumMetric() for s in ("val", "test") for k in ("rule1", "rule2", "annotated")}
        )
        self._examples: list[list[Any]] = []

    def input_limits(self) -> dict[str, int]:
        return {"max_sentences": self.max_sentences, "max_tokens": self.max_tokens}

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(**{k: batch[k] for k in NET_INPUTS})

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, _ = self(batch)
        loss = F.cross_entropy(logits, batch["labels"], ignore_index=-100)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]), sync_dist=True)
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        logits, weights = self(batch)
        y = batch["labels"]
        known = y >= 0
        if known.any():
            self.loss_mean[stage].update(F.cross_entropy(logits[known], y[known]), weight=int(known.sum()))
            self.acc[stage].update(logits[known].argmax(-1), y[known])
        rows = prediction_rows(batch, logits, weights, self.labels, self.window)
        total = sum(1 for a in batch["main_question"] if a)
        for rule in ("rule1", "rule2"):
            correct, _ = rule_accuracy([r["main_question"][rule] for r in rows], batch["main_question"])
            self.rule_counts[f"{stage}_{rule}"].update(correct)
        self.rule_counts[f"{stage}_annotated"].update(total)
        if stage == "test" and len({e[0] for e in self._examples}) < self.log_examples:
            self._collect_examples(rows, batch["main_question"])

    def _log_stage(self, stage: str) -> None:
        if self.loss_mean[stage].update_count:
            self.log(f"{stage}/loss", self.loss_mean[stage].compute(), sync_dist=True)
            self.log(f"{stage}/acc", self.acc[stage].compute(), sync_dist=True)
        annotated = self.rule_counts[f"{stage}_annotated"].compute()
        if annotated > 0:  # 002 §2.4: accuracy of each rule against the annotated main question
            for rule in ("rule1", "rule2"):
                self.log(
                    f"{stage}/main_question/{rule}_acc",
                    self.rule_counts[f"{stage}_{rule}"].compute() / annotated,
                    sync_dist=True,
                )
        for metric in [
            self.loss_mean[stage],
            self.acc[stage],
            *(self.rule_counts[f"{stage}_{k}"] for k in ("rule1", "rule2", "annotated")),
        ]:
            metric.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self._examples = []

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")
        self._log_example_table()

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        logits, weights = self(batch)
        return prediction_rows(batch, logits, weights, self.labels, self.window)

    # --- 002 Fig. 4-style view: one transcript with its sentence weights (W&B table) --------
    def _collect_examples(self, rows: list[dict[str, Any]], annotated: Sequence[str | None]) -> None:
        from feedback_nlp.nets.main_question import is_main_question

        for row, truth in zip(rows, annotated):
            if len({e[0] for e in self._examples}) >= self.log_examples:
                break
            for i, (sent, spk, w) in enumerate(zip(row["sentences"], row["speakers"], row["sentence_weights"])):
                self._examples.append(
                    [
                        row["id"],
                        i,
                        i - row["agent_first"],
                        spk,
                        sent,
                        round(w, 4),
                        i == row["main_question_index"]["rule1"],
                        i == row["main_question_index"]["rule2"],
                        bool(truth and is_main_question(sent, truth)),
                    ]
                )

    def example_rows(self) -> list[dict[str, Any]]:
        """The test examples' sentences (weight, rule 1/2 pick, annotated) as dicts, for plots."""
        return [dict(zip(EXAMPLE_COLUMNS, e)) for e in self._examples]

    def _log_example_table(self) -> None:
        from feedback_nlp.training.logging_setup import log_table

        log_table(self.trainer, "test/main_question_examples", list(EXAMPLE_COLUMNS), self._examples)

    def param_groups(self) -> list[dict[str, Any]]:
        """An optional separate learning rate for the new head (key vector + classifier start
        from scratch; the encoder is pretrained)."""
        head = [p for n, p in self.net.named_parameters() if not n.startswith("encoder.") and p.requires_grad]
        body = [p for n, p in self.net.named_parameters() if n.startswith("encoder.") and p.requires_grad]
        return [{"params": body}, {"params": head, "lr": self.head_lr or self.optim.lr}]

    # --- serving ---------------------------------------------------------------------------
    def export_for_serving(self, out_dir: Path, onnx_examples: Sequence[Any] = ()) -> dict[str, Any]:
        """Self-contained serving folder (safetensors + JSON; + ONNX checked against eager
        when example transcripts are given). Format: feedback_nlp/serving/seacat.py."""
        from feedback_nlp.serving.seacat import ONNX_TOLERANCE, write_export

        fields = write_export(Path(out_dir), self.net, self.tokenizer, self.serving_settings())
        if onnx_examples:
            from feedback_nlp.serving.onnx_export import export_for_task

            fields.update(export_for_task(Path(out_dir), fields, ONNX_TOLERANCE, onnx_examples))
        return fields

    def serving_settings(self) -> dict[str, Any]:
        """What the serving folder records so a predictor rebuilds this network exactly."""
        return {
            "task": self.task,
            "labels": list(self.labels),
            "max_sentences": self.max_sentences,
            "max_tokens": self.max_tokens,
            "pooling": self.pooling,
            "position_embedding": self.position_embedding,
            "main_question_window": self.window,
            "pretrained": self.pretrained,
        }
