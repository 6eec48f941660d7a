"""Feedback -> multi-task seq2seq samples (000 §3.2, §4.2, App. A) or multi-label rows (000 §5.1).

Why: 000 §3.2 trains ONE model for both issue levels: every feedback becomes two samples, the
text prefixed with "identify high-level issues: " (L-Coarse) or "identify fine-grain issues: "
(L-Granular), mixed 1:1, targets joined by ", ". App. A adds auxiliary tasks (summarization,
span infilling, text-to-text classification), each mixed in by a weight; §4.2 shuffles input
sentences and target issues in training. Evaluation batches hold whole feedback (both levels),
so metrics and predictions are per feedback. `target_format: multilabel` serves the same splits
to the MCML-BERT baseline (coarse issues as a multi-hot vector).
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from feedback_nlp.core.issue_sets import join_issues
from feedback_nlp.core.padding import pad_encoding, pad_last_dim
from feedback_nlp.core.records import Feedback
from feedback_nlp.core.vocabulary import AUX_TASKS, ISSUE_LEVELS, TASK_PREFIXES
from feedback_nlp.datamodules.base import RecordDataModule
from feedback_nlp.datamodules.batching import EpochBatchSampler, EpochRandomSampler
from feedback_nlp.datamodules.shuffling import sample_rng, shuffle_sentences, shuffled
from feedback_nlp.datamodules.span_infilling import make_span_infilling, sentinel_tokens

LEVELS = ISSUE_LEVELS
DEFAULT_PREFIXES = TASK_PREFIXES


def aux_target(record: Feedback, task: str) -> str | None:
    """The auxiliary target a record offers (its `summary` / `label` extra field), or None."""
    if task == "span_infilling":
        return ""
    value = record.extra.get({"summarization": "summary", "classification": "label"}[task])
    return str(value).strip() if isinstance(value, (str, int)) and str(value).strip() else None


class MultiTaskSamples(Dataset):
    """Training samples as (task, record) specs, made into text per (epoch, index) on access."""

    def __init__(
        self,
        records: Sequence[Feedback],
        prefixes: Mapping[str, str],
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        shuffle_sentences: bool = True,
        shuffle_issues: bool = True,
        span_noise_density: float = 0.15,
        span_mean_length: float = 3.0,
        num_sentinels: int = 20,
    ):
        self.records, self.prefixes, self.seed = list(records), dict(prefixes), seed
        self.shuffle_sentences, self.shuffle_issues = shuffle_sentences, shuffle_issues
        self.span = (span_noise_density, span_mean_length, num_sentinels)
        self.specs: list[tuple[str, int]] = [(lvl, i) for i in range(len(self.records)) for lvl in LEVELS]
        for task, weight in (weights or {}).items():
            if task not in AUX_TASKS:
                raise ValueError(f"unknown auxiliary task {task!r}; expected one of {AUX_TASKS}")
            eligible = [i for i, r in enumerate(self.records) if aux_target(r, task) is not None]
            n = round(weight * len(self.records))
            if n and not eligible:
                raise ValueError(
                    f"auxiliary task {task} has weight {weight} but no training record has its "
                    f"field ({'summary' if task == 'summarization' else 'label'})"
                )
            if n:
                random.Random(f"aux:{seed}:{task}").shuffle(eligible)
                self.specs += [(task, eligible[j % len(eligible)]) for j in range(n)]
        self._lengths: list[int] | None = None

    def lengths(self, tokenizer: Any) -> list[int]:
        """Source token counts (epoch-0 texts; shuffling keeps a sample's length) for grouping batches.

        Why the source only, as HF's `group_by_length`: both levels of a feedback share its length,
        so a batch still mixes coarse and granular targets. Sorting on target length first pads
        less (measured: 1.16x the real compute vs 1.33x) but makes batches of one task and one
        target length, and the demo model then learned half as well in the same steps.
        """
        if self._lengths is None:
            sources = [self.prefixes[task] + self.records[i].text for task, i in self.specs]
            self._lengths = [len(ids) for ids in tokenizer(sources, add_special_tokens=True)["input_ids"]]
        return self._lengths

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, str]:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        task, i = self.specs[index]
        rec = self.records[i]
        text, target = rec.text, ""
        if task in LEVELS:
            issues = getattr(rec, task)
            if epoch is not None and self.shuffle_sentences:  # 000 §4.2, training only
                text = shuffle_sentences(text, self.seed, epoch, rec.id)
            if epoch is not None and self.shuffle_issues:
                issues = shuffled(issues, self.seed, epoch, f"{rec.id}:{task}", "issues")
            target = join_issues(issues)
        elif task == "span_infilling":  # App. A: new spans every epoch
            rng = sample_rng(self.seed, epoch or 0, f"{rec.id}:{index}", "spans")
            pair = make_span_infilling(text, rng, *self.span)
            text, target = pair if pair else (text, sentinel_tokens(1)[0])
        else:
            target = aux_target(rec, task) or ""
        return {"id": rec.id, "task": task, "source": self.prefixes[task] + text, "target": target}


def label_strip_id(tokenizer: Any) -> int | None:
    """The token a BERT-style tokenizer puts before every target ([CLS]) and an EncoderDecoderModel
    adds itself as decoder start when shifting labels; None for T5/BART/Pegasus tokenizers."""
    if getattr(tokenizer, "bos_token_id", None) is None and getattr(tokenizer, "cls_token_id", None) is not None:
        return tokenizer.cls_token_id
    return None


class Seq2SeqEncoding:
    """Tokenize (source, target) text with dynamic padding (to the batch's longest, capped at the
    max lengths): what the training and the evaluation collators share."""

    def __init__(
        self, tokenizer: Any, max_source_length: int, max_target_length: int, pad_to_multiple_of: int | None = None
    ):
        self.tokenizer, self.max_source, self.max_target = tokenizer, max_source_length, max_target_length
        self.pad_to_multiple_of = pad_to_multiple_of  # 8: tensor-core friendly shapes on GPU
        self.strip_id = label_strip_id(tokenizer)

    def encode(self, sources: list[str], targets: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(sources, max_length=self.max_source, truncation=True, padding=True, return_tensors="pt")
        enc = pad_encoding(enc, self.pad_to_multiple_of, self.tokenizer.pad_token_id)
        extra = 1 if self.strip_id is not None else 0
        lab = self.tokenizer(
            text_target=targets, max_length=self.max_target + extra, truncation=True, padding=True, return_tensors="pt"
        )
        labels, mask = lab["input_ids"], lab["attention_mask"]
        if self.strip_id is not None and bool((labels[:, 0] == self.strip_id).all()):
            labels, mask = labels[:, 1:], mask[:, 1:]
        labels = pad_last_dim(labels.masked_fill(mask == 0, -100), self.pad_to_multiple_of, -100).contiguous()
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


class Seq2SeqCollator(Seq2SeqEncoding):
    """Training rows ({id, task, source, target}) -> a batch."""

    def __call__(self, items: list[dict[str, str]]) -> dict[str, Any]:
        out: dict[str, Any] = self.encode([x["source"] for x in items], [x["target"] for x in items])
        out.update(ids=[x["id"] for x in items], tasks=[x["task"] for x in items])
        return out


class FeedbackEvalCollator(Seq2SeqEncoding):
    """Whole feedback per item: rows [coarse of each record..., granular of each record...]."""

    def __init__(
        self,
        tokenizer: Any,
        max_source_length: int,
        max_target_length: int,
        prefixes: Mapping[str, str],
        pad_to_multiple_of: int | None = None,
    ):
        super().__init__(tokenizer, max_source_length, max_target_length, pad_to_multiple_of)
        self.prefixes = prefixes

    def __call__(self, records: list[Feedback]) -> dict[str, Any]:
        sources = [self.prefixes[lvl] + r.text for lvl in LEVELS for r in records]
        annotated = [list(getattr(r, lvl)) for lvl in LEVELS for r in records]
        out: dict[str, Any] = self.encode(sources, [join_issues(a) for a in annotated])
        out.update(
            ids=[r.id for r in records],
            texts=[r.text for r in records],
            sources=sources,
            levels=[lvl for lvl in LEVELS for _ in records],
            annotated=annotated,
        )
        return out


class MultiLabelCollator:
    """000 §5.1 MCML-BERT rows: the raw text and a multi-hot vector over the coarse label set."""

    def __init__(
        self, tokenizer: Any, max_source_length: int, labels: Sequence[str], pad_to_multiple_of: int | None = None
    ):
        self.tokenizer, self.max_source, self.pad_to_multiple_of = tokenizer, max_source_length, pad_to_multiple_of
        self.index = {lab.casefold(): i for i, lab in enumerate(labels)}

    def __call__(self, records: list[Feedback]) -> dict[str, Any]:
        enc = self.tokenizer(
            [r.text for r in records], max_length=self.max_source, truncation=True, padding=True, return_tensors="pt"
        )
        enc = pad_encoding(enc, self.pad_to_multiple_of, self.tokenizer.pad_token_id)
        target = torch.zeros(len(records), len(self.index))
        for row, r in enumerate(records):
            for issue in r.coarse:
                if issue.casefold() in self.index:
                    target[row, self.index[issue.casefold()]] = 1.0
        return {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": target,
            "ids": [r.id for r in records],
            "texts": [r.text for r in records],
            "annotated": [list(r.coarse) for r in records],
        }


class MultilevelIssuesDataModule(RecordDataModule):
    """Feedback JSONL -> training/eval batches for the issue models (000).

    Args:
        prefixes: Task prefixes by task (coarse, granular, auxiliary tasks) over the defaults of 000 §3.2.
        shuffle_sentences: Shuffle a feedback's sentences in each training sample (000 §4.2).
        shuffle_issues: Shuffle the order of the target issues in each training sample (000 §4.2).
        summarization_weight: Summarization samples per training feedback (App. A; 0: off; records need `summary`).
        span_infilling_weight: T5-style span infilling samples per training feedback (App. A; 0: off).
        classification_weight: Text-to-text classification samples per feedback (App. A; 0: off; records need `label`).
        span_noise_density: Share of the tokens masked by span infilling.
        span_mean_length: Mean length of a masked span, in tokens.
        num_sentinels: Sentinel tokens available to span infilling (added to the tokenizer).
        group_by_length: Batch training samples of similar length together (less padding).
        length_group_size: Batches per length group (larger: more similar lengths, less randomness).
        target_format: seq2seq (issue text, the 000 model) or multilabel (coarse multi-hot, MCML-BERT).
    """

    kind = "feedback"

    def __init__(
        self,
        prefixes: Mapping[str, str] | None = None,
        shuffle_sentences: bool = True,
        shuffle_issues: bool = True,
        summarization_weight: float = 0.0,
        span_infilling_weight: float = 0.0,
        classification_weight: float = 0.0,
        span_noise_density: float = 0.15,
        span_mean_length: float = 3.0,
        num_sentinels: int = 20,
        group_by_length: bool = True,
        length_group_size: int = 50,
        target_format: str = "seq2seq",
        **base: Any,  # path, splits, batch size, loader settings: RecordDataModule's parameters
    ):
        super().__init__(**base)
        unknown = set(prefixes or {}) - set(DEFAULT_PREFIXES)
        if unknown:
            raise ValueError(f"data.prefixes has unknown task(s) {sorted(unknown)}; known: {sorted(DEFAULT_PREFIXES)}")
        if target_format not in ("seq2seq", "multilabel"):
            raise ValueError(f"data.target_format must be seq2seq or multilabel, got {target_format!r}")
        self.prefixes = {**DEFAULT_PREFIXES, **(prefixes or {})}
        # the model's input sizes (model.max_source_length / max_target_length), given by `connect`
        self.max_source_length, self.max_target_length = 512, 64
        self.shuffle_sentences, self.shuffle_issues = shuffle_sentences, shuffle_issues
        self.weights = {
            "summarization": summarization_weight,
            "span_infilling": span_infilling_weight,
            "classification": classification_weight,
        }
        self.span_noise_density, self.span_mean_length = span_noise_density, span_mean_length
        self.num_sentinels = num_sentinels
        self.group_by_length, self.length_group_size = group_by_length, length_group_size
        self.target_format = target_format
        self.train_samples: MultiTaskSamples | None = None

    def coarse_labels(self) -> list[str]:
        """The L-Coarse label set seen in training (MCML-BERT's output classes)."""
        seen: dict[str, str] = {}
        for r in self.validate().train:
            for issue in r.coarse:
                seen.setdefault(issue.casefold(), issue)
        return sorted(seen.values(), key=str.casefold)

    def task_info(self) -> dict[str, Any]:
        use_spans = self.weights["span_infilling"] > 0
        return {
            "prefixes": {lvl: self.prefixes[lvl] for lvl in LEVELS},
            "sentinel_tokens": sentinel_tokens(self.num_sentinels) if use_spans else [],
            "labels": self.coarse_labels(),
        }

    def setup(self, stage: str | None = None) -> None:
        splits = self.validate()
        if self.train_samples is None and self.target_format == "seq2seq":
            self.train_samples = MultiTaskSamples(
                splits.train,
                self.prefixes,
                self.seed,
                {k: w for k, w in self.weights.items() if w > 0},
                self.shuffle_sentences,
                self.shuffle_issues,
                self.span_noise_density,
                self.span_mean_length,
                self.num_sentinels,
            )

    def connect(
        self,
        tokenizer: Any = None,
        max_source_length: int | None = None,
        max_target_length: int | None = None,
        **limits: Any,
    ) -> None:
        """The model's tokenizer and input sizes (model.max_source_length / max_target_length)."""
        super().connect(tokenizer, **limits)
        if max_source_length is not None:
            self.max_source_length = max_source_length
        if max_target_length is not None:
            self.max_target_length = max_target_length

    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise RuntimeError(
                "MultilevelIssuesDataModule.connect(tokenizer=...) must be called before loading batches"
            )
        return self.tokenizer

    def _eval_collate(self) -> Any:
        if self.target_format == "multilabel":
            return MultiLabelCollator(
                self._require_tokenizer(), self.max_source_length, self.coarse_labels(), self.pad_to_multiple_of
            )
        return FeedbackEvalCollator(
            self._require_tokenizer(),
            self.max_source_length,
            self.max_target_length,
            self.prefixes,
            self.pad_to_multiple_of,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        if self.target_format == "multilabel":
            return self.loader(self.validate().train, self._eval_collate(), train=True)
        samples = self.train_samples
        if samples is None:  # pragma: no cover - setup("fit") builds them for seq2seq targets
            raise RuntimeError("MultilevelIssuesDataModule.setup did not build the training samples")
        lengths = samples.lengths(self._require_tokenizer()) if self.group_by_length else None
        batch_sampler = EpochBatchSampler(
            EpochRandomSampler(samples, self.seed),
            self.per_device_batch_size(self.batch_size),
            False,
            lengths=lengths,
            group_size=self.length_group_size,
            seed=self.seed,
            resume_at=self.resume_position(),
        )
        collate = Seq2SeqCollator(
            self._require_tokenizer(), self.max_source_length, self.max_target_length, self.pad_to_multiple_of
        )
        return DataLoader(samples, batch_sampler=batch_sampler, collate_fn=collate, **self.loader_options())

    def _eval_loader(self, records: Sequence[Feedback], sort: bool = True) -> DataLoader:
        # longest first: generation pads less, and memory peaks on the first batch
        items = sorted(records, key=lambda r: -len(r.text)) if sort else list(records)
        return self.loader(items, self._eval_collate(), train=False)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.validate().dev)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.validate().test)

    def predict_dataloader(self) -> DataLoader:
        splits = self.validate()
        return self._eval_loader(splits.traffic or splits.test, sort=False)
