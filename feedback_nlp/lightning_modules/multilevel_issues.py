"""One multi-task seq2seq model for L-Coarse and L-Granular product issues (paper 000).

Why: 000 §3.2 generates both issue levels with a single fine-tuned encoder-decoder, steered by a
task prefix, instead of one classifier per level; §4.3 scores each level with ROUGE-1/2 and
SimCSE precision/recall; Appendix C fixes beam width 2 and length penalty 2.5 for decoding.
This module only wires those pieces: the backbone comes from `seq2seq_backbone`, samples from
`datamodules/multilevel_issues.py`, the math from `metrics/`, decoding from `nets/multilevel_issues.py`.
Serving:
`export_for_serving` writes a self-contained HF folder (format: feedback_nlp/serving/multilevel_issues.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from feedback_nlp.core.config import ConfigError
from feedback_nlp.core.issue_sets import join_issues
from feedback_nlp.core.model_factory import PACKAGED_MINILM, set_dropout
from feedback_nlp.core.sentences import split_sentences
from feedback_nlp.core.vocabulary import ISSUE_LEVELS, TASK_PREFIXES
from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.lightning_modules.issue_objectives import (
    check_loss_weights,
    check_selection,
    row_weights,
    selection_score,
)
from feedback_nlp.lightning_modules.seq2seq_backbone import (
    add_tokens,
    build_seq2seq,
    freeze_word_embeddings,
    new_parameter_names,
    seq2seq_loss,
)
from feedback_nlp.metrics.module_map import ModuleMap
from feedback_nlp.metrics.multilevel_issues import LevelMetrics, SentenceEmbedder
from feedback_nlp.nets.multilevel_issues import generate_issue_sets, generation_kwargs

LEVELS = ISSUE_LEVELS
__all__ = ["MultiLevelIssuesModule"]


class MultiLevelIssuesModule(TaskModule):
    """Seq2seq issue identification; `prefixes`, max lengths and sentinels come from the DataModule.

    Args:
        pretrained: Hugging Face model name or folder (seq2seq, or an encoder to warm-start on both sides).
        architecture: auto (from the checkpoint), seq2seq, or encoder-decoder (warm-started encoder pair).
        encoder_layers: Keep only this many encoder layers of a warm start (null: all).
        decoder_layers: Keep only this many decoder layers of a warm start (null: all).
        cross_attention_init: A warm start's new cross-attention: random or self_attention (copied).
        freeze_embeddings: Freeze the word embeddings.
        dropout: Dropout of the whole model (null: the checkpoint's own).
        new_params_lr: Learning rate of the parameters a warm start creates (null: optim.lr).
        num_beams: Beam width of generation (000 App. C: 2).
        length_penalty: Length penalty of beam search (000 App. C: 2.5).
        no_repeat_ngram_size: Forbid repeating n-grams of this size in generation (0: off).
        repetition_penalty: HF generate's repetition penalty (> 1 discourages repeated tokens; 1.0: off).
        task_loss_weights: Task -> training-loss weight, e.g. {granular: 2.0} (a weighted token mean; null: all 1).
        label_smoothing: Label smoothing of the training loss (dev/test losses stay plain cross-entropy).
        selection_metric: Per-level dev metric that val/selection_score averages (simcse_f1, rouge1, ...).
        selection_weights: Level -> weight of that average (null: coarse 1, granular 1).
        simcse_model: Sentence encoder of the SimCSE metric (000 §4.3).
        simcse_threshold: Cosine above which a generated and an annotated issue match (000 eq. 1: 0.7).
        rouge_use_stemmer: Porter-stem words before ROUGE.
        generate_on_validation: Generate and score issue lists at every validation (slower; else loss only).
        copy_input_baseline: Also score the copy-the-input baseline at test.
        log_generations: Validation rows logged as (input, target, prediction) per validation.
        prefixes: Task prefixes (from the DataModule's task_info).
        max_source_length: Tokens per input text (000 App. C: 512); the DataModule truncates to it.
        max_target_length: Tokens per generated or target issue list (000 App. C: 64).
        sentinel_tokens: Span-infilling sentinels added to the tokenizer (from the DataModule's task_info).
    """

    task = "multilevel_issues"
    optim_defaults = {"lr": 5e-5, "fused": True}

    def __init__(
        self,
        pretrained: str = PACKAGED_MINILM,
        architecture: str = "auto",
        encoder_layers: int | None = None,
        decoder_layers: int | None = None,
        cross_attention_init: str = "random",
        freeze_embeddings: bool = False,
        dropout: float | None = None,
        new_params_lr: float | None = None,
        optim: Mapping[str, Any] | None = None,
        num_beams: int = 2,
        length_penalty: float = 2.5,
        no_repeat_ngram_size: int = 0,
        repetition_penalty: float = 1.0,
        task_loss_weights: Mapping[str, float] | None = None,
        label_smoothing: float = 0.0,
        selection_metric: str = "simcse_f1",
        selection_weights: Mapping[str, float] | None = None,
        simcse_model: str = PACKAGED_MINILM,
        simcse_threshold: float = 0.7,
        rouge_use_stemmer: bool = False,
        generate_on_validation: bool = True,
        copy_input_baseline: bool = True,
        log_generations: int = 8,
        prefixes: Mapping[str, str] | None = None,
        max_source_length: int = 512,
        max_target_length: int = 64,
        sentinel_tokens: Sequence[str] | None = None,
    ):
        super().__init__(optim, **self.optim_defaults)
        self.save_hyperparameters()
        self.new_params_lr, self.log_generations = new_params_lr, log_generations
        self.generate_on_validation, self.copy_input_baseline = generate_on_validation, copy_input_baseline
        self.simcse_threshold, self.rouge_use_stemmer = simcse_threshold, rouge_use_stemmer
        self.loss_weights = check_loss_weights(task_loss_weights)
        self.selection = check_selection(selection_metric, selection_weights)
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"model.label_smoothing must be in [0, 1), got {label_smoothing}")
        if repetition_penalty <= 0:
            raise ConfigError(f"model.repetition_penalty must be > 0, got {repetition_penalty}")
        self.label_smoothing = label_smoothing
        self.model, self.tokenizer = build_seq2seq(
            pretrained, architecture, encoder_layers, decoder_layers, cross_attention_init
        )
        self.added_tokens = add_tokens(self.model, self.tokenizer, list(sentinel_tokens or []))
        if dropout is not None:
            set_dropout(self.model, dropout)
        if freeze_embeddings:
            freeze_word_embeddings(self.model)
        self.prefixes = {lvl: TASK_PREFIXES[lvl] for lvl in ISSUE_LEVELS} | dict(prefixes or {})
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        gen = self.model.generation_config  # exported with the model: serving decodes the same way
        gen.num_beams, gen.length_penalty, gen.max_new_tokens = num_beams, length_penalty, max_target_length
        gen.no_repeat_ngram_size = no_repeat_ngram_size or None
        gen.repetition_penalty = repetition_penalty
        gen.early_stopping = num_beams > 1
        self.embedder = SentenceEmbedder(simcse_model)  # not an nn.Module: never in checkpoints
        self.val_metrics, self.test_metrics, self.copy_metrics = (self._level_metrics() for _ in range(3))
        self._samples: list[dict[str, str]] = []
        # stage -> level -> (predicted, annotated) issue sets of this epoch, for
        # callbacks/degenerate_generation.py; reset when a validation / test epoch starts
        self.generation_log: dict[str, dict[str, list[tuple[list[str], list[str]]]]] = {}

    def _level_metrics(self) -> ModuleMap[LevelMetrics]:
        return ModuleMap(
            {lvl: LevelMetrics(self.embedder, self.simcse_threshold, self.rouge_use_stemmer) for lvl in LEVELS}
        )

    def param_groups(self) -> list[dict[str, Any]]:
        """With `new_params_lr`, the parameters an EncoderDecoder warm start creates from scratch
        (cross-attention, LM-head transform) get their own learning rate: they have everything to
        learn, the pretrained rest little."""
        new = new_parameter_names(self.model) if self.new_params_lr else set()
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": [p for n, p in named if n not in new]}]
        if new:
            groups.append({"params": [p for n, p in named if n in new], "lr": self.new_params_lr})
        return groups

    # --- steps ------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        label_smoothing: float = 0.0,
        weights: torch.Tensor | None = None,
    ):
        return seq2seq_loss(self.model, input_ids, attention_mask, labels, label_smoothing, weights)

    def _log_task_losses(
        self, stage: str, tasks: Sequence[str], row_sum: torch.Tensor, row_count: torch.Tensor, on_step: bool
    ) -> None:
        for task in dict.fromkeys(tasks):
            idx = torch.tensor([t == task for t in tasks], device=row_sum.device)
            n = int(idx.sum())
            value = row_sum[idx].sum() / row_count[idx].sum().clamp(min=1)
            self.log(f"{stage}/{task}/loss", value, on_step=on_step, on_epoch=True, batch_size=n, sync_dist=True)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        weights = row_weights(self.loss_weights, batch["tasks"], self.device) if self.loss_weights else None
        loss, row_sum, row_count = self(
            batch["input_ids"], batch["attention_mask"], batch["labels"], self.label_smoothing, weights
        )
        size = len(batch["tasks"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        self._log_task_losses("train", batch["tasks"], row_sum, row_count, on_step=False)
        return loss

    def _eval_step(self, stage: str, batch: dict[str, Any], metrics: ModuleMap[LevelMetrics], generate: bool) -> None:
        loss, row_sum, row_count = self(batch["input_ids"], batch["attention_mask"], batch["labels"])
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(batch["levels"]), sync_dist=True)
        self._log_task_losses(stage, batch["levels"], row_sum, row_count, on_step=False)
        table = self._table_rows(batch) if stage == "val" else []
        if generate:
            self.embedder.device = self.device
            predicted: list[list[str]] | dict[int, list[str]]
            predicted = self.generate_issue_sets(batch["input_ids"], batch["attention_mask"])
            for lvl in LEVELS:
                rows = [i for i, level in enumerate(batch["levels"]) if level == lvl]
                metrics[lvl].update([predicted[i] for i in rows], [batch["annotated"][i] for i in rows])
                self.generation_log.setdefault(stage, {}).setdefault(lvl, []).extend(
                    (predicted[i], list(batch["annotated"][i])) for i in rows
                )
        elif table:  # no metrics this validation, but still the sample table (item 9): generate those rows only
            sub = self.generate_issue_sets(batch["input_ids"][table], batch["attention_mask"][table])
            predicted = dict(zip(table, sub))
        for i in table:
            self._samples.append(
                {
                    "input": batch["sources"][i],
                    "target": join_issues(batch["annotated"][i]),
                    "prediction": join_issues(predicted[i]),
                }
            )

    def _table_rows(self, batch: dict[str, Any]) -> list[int]:
        """Rows for the generations table: both levels of the first feedback, until it is full."""
        room = self.log_generations - len(self._samples)
        n = len(batch["ids"])
        pairs = [j for i in range(n) for j in (i, n + i)]
        return pairs[: max(0, room)]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch, self.val_metrics, self.generate_on_validation)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch, self.test_metrics, True)
        if self.copy_input_baseline:
            # a copy-the-input baseline: the feedback's own sentences offered as its issues
            copied = [split_sentences(t) for t in batch["texts"]]
            n = len(copied)
            for k, lvl in enumerate(LEVELS):
                self.copy_metrics[lvl].update(copied, batch["annotated"][k * n : (k + 1) * n])

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        predicted = self.generate_issue_sets(batch["input_ids"], batch["attention_mask"])
        n = len(batch["ids"])
        return [{"id": rid, "coarse": predicted[i], "granular": predicted[n + i]} for i, rid in enumerate(batch["ids"])]

    def generate_issue_sets(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[str]]:
        return generate_issue_sets(
            self.model, self.tokenizer, input_ids, attention_mask, generation_kwargs(self.model.generation_config)
        )

    # --- epoch ends -------------------------------------------------------------------------
    def _log_levels(
        self, stage: str, metrics: ModuleMap[LevelMetrics], prefix: str = ""
    ) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for lvl in LEVELS:
            if int(metrics[lvl].simcse.count) == 0 and not torch.distributed.is_initialized():
                continue
            out[lvl] = metrics[lvl].compute()  # already reduced over ranks (torchmetrics sync)
            for name, value in out[lvl].items():
                self.log(f"{stage}/{lvl}/{prefix}{name}", value, sync_dist=True)
            metrics[lvl].reset()
        return out

    def _log_selection(self, stage: str, values: Mapping[str, Mapping[str, float]]) -> None:
        """`<stage>/selection_score`: what checkpointing and early stopping watch (issue 26)."""
        metric, weights = self.selection
        if all(lvl in values for lvl in weights):
            score = selection_score(values, metric, weights)
            self.log(f"{stage}/selection_score", score, prog_bar=stage == "val")

    def on_validation_epoch_start(self) -> None:
        self.generation_log.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.generation_log.pop("test", None)

    def on_validation_epoch_end(self) -> None:
        if self.generate_on_validation:
            self._log_selection("val", self._log_levels("val", self.val_metrics))
        self._write_generations()

    def on_test_epoch_end(self) -> None:
        self._log_selection("test", self._log_levels("test", self.test_metrics))
        if self.copy_input_baseline:
            self._log_levels("test", self.copy_metrics, prefix="copy_input_")

    def _write_generations(self) -> None:
        """Item 9: a table of (input, target, prediction) per validation, to W&B and to the run dir."""
        rows, self._samples = self._samples, []
        if not rows or self.trainer is None or not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        from feedback_nlp.core.io import atomic_write_jsonl

        name = f"val_epoch{self.current_epoch:03d}"
        if not self.trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:  # a mid-epoch validation
            name += f"_step{self.global_step:06d}"
        atomic_write_jsonl(Path(self.trainer.default_root_dir) / "generations" / f"{name}.jsonl", rows)
        from feedback_nlp.training.logging_setup import log_table

        log_table(
            self.trainer,
            "val/generations",
            ["input", "target", "prediction"],
            [[r["input"], r["target"], r["prediction"]] for r in rows],
        )

    def unavailable_metric(self, name: str) -> str | None:
        generated = ("val/selection_score", "val/coarse/", "val/granular/")
        if not self.generate_on_validation and name.startswith(generated) and not name.endswith("/loss"):
            return "it is computed from issues generated at validation: set model.generate_on_validation=true"
        return None

    # --- serving ----------------------------------------------------------------------------
    def input_limits(self) -> dict[str, int]:
        return {"max_source_length": self.max_source_length, "max_target_length": self.max_target_length}

    def export_for_serving(self, out_dir: Path) -> dict[str, Any]:
        """Write model + tokenizer + generation config (safetensors) and the task settings."""
        from feedback_nlp.serving.multilevel_issues import write_export

        return write_export(
            self.model,
            self.tokenizer,
            Path(out_dir),
            self.task,
            self.prefixes,
            self.max_source_length,
            self.max_target_length,
        )
