"""Customer claims for the product-safety classifier (001 §3-§4).

Why: the paper's gains come from the training data, not the model: the same BERT is trained
on three variants (Table 2/3) — `original` (escalated, labeled claims), `original+NN` (plus
noisy negatives mined from unescalated traffic, §3.1) and `original+NN+PC` (plus translations
of every labeled comment, §3.1). Evaluation is fixed across variants: time-based splits
(§4.1: last month = test, all of that month's comments = traffic), and the test comments'
translations for language fairness (§4.2).

Variants only ever add to train and dev (the paper augments both, Table 2); a translation or
mined negative always stays in the split of its source, and test/traffic never change.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Sequence

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from feedback_nlp.core.errors import DataValidationError, Problem
from feedback_nlp.core.padding import pad_encoding
from feedback_nlp.core.vocabulary import SAFETY_LABELS
from feedback_nlp.datamodules.base import ListDataset, RecordDataModule
from feedback_nlp.datamodules.batching import EpochBatchSampler, EpochRandomSampler
from feedback_nlp.datamodules.noisy_negatives import NoisyNegatives
from feedback_nlp.datamodules.parallel_corpus import ParallelCorpus
from feedback_nlp.datamodules.splits import Splits, hash_unit, time_split

VARIANTS = ("original", "original+NN", "original+NN+PC")
LABELS = list(SAFETY_LABELS)
INT_FIELDS = ("index", "language", "group", "in_test", "in_traffic", "is_original", "escalated")


def _month(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}"


def window_time_split(records: Sequence[Any], seed: int, dev_fraction: float, test_months: int) -> Splits:
    """001 §4.1 with a test window of the last `test_months` labeled months (1 = the paper).

    Small public data sets hold too few claims per month for a one-month test; the window
    keeps the paper's logic (train/dev strictly before the test period, traffic = everything in it).
    """
    by_id = {r.id: r for r in records}

    def root_month(r: Any) -> str:
        seen = set()
        while r.source_id and r.source_id in by_id and r.id not in seen:
            seen.add(r.id)
            r = by_id[r.source_id]
        return _month(r.created_at)

    months = sorted({root_month(r) for r in records if r.label is not None})
    if not months:
        raise ValueError("time split: no labeled records")
    window = months[-test_months:]
    out = time_split(records, seed, dev_fraction, test_month=window[0])
    for r in records:
        if root_month(r) > window[0]:
            out.traffic.append(r)
            if r.label is not None:
                out.test.append(r)
    out.test_month = f"{window[0]}..{window[-1]}" if len(window) > 1 else window[0]
    return out


class ProductSafetyDataModule(RecordDataModule):
    """Claim records -> train/dev (per variant), test + traffic (fixed), predict batches.

    Args:
        variant: Training data (Table 2/3): original, original+NN (+ noisy negatives), original+NN+PC (+ translations).
        test_months: Labeled months in the test window of a time split (1: the paper's last month).
        augment_dev: Also add translations and mined negatives to dev, as the paper does (Table 2).
        labeled_means_escalated: A labeled claim without an `escalated` field counts as escalated (FCC volume).
        predict_path: Claims JSONL that `predict` scores (null: the test period's traffic).
        group_by_length: Batch claims of similar length together (less padding; order still seeded).
        noisy_negatives: Mining of noisy negatives from unescalated traffic (section; class_path NoisyNegatives).
        parallel_corpus: Translations of the labeled claims (section; class_path ParallelCorpus).
        progress: Show progress bars while mining and translating.
    """

    kind = "claim"

    def __init__(
        self,
        variant: str = "original+NN+PC",
        test_months: int = 1,
        augment_dev: bool = True,
        labeled_means_escalated: bool = True,
        predict_path: str | None = None,
        group_by_length: bool = True,
        noisy_negatives: NoisyNegatives | None = None,
        parallel_corpus: ParallelCorpus | None = None,
        progress: bool = True,
        **base: Any,  # path, splits, batch size, loader settings: RecordDataModule's parameters
    ):
        super().__init__(**base)
        if variant not in VARIANTS:
            raise ValueError(f"data.variant must be one of {VARIANTS}, got {variant!r}")
        self.variant, self.test_months = variant, test_months
        self.max_length: int | None = None  # the model's (connect), not a data setting
        self.augment_dev, self.labeled_means_escalated = augment_dev, labeled_means_escalated
        self.predict_path, self.group_by_length, self.progress = predict_path, group_by_length, progress
        # the paper's defaults when a config names the variant but leaves a section out
        self.noisy_negatives = noisy_negatives or NoisyNegatives()
        self.parallel_corpus = parallel_corpus or ParallelCorpus()
        self._loaded: list = []
        self.pool: list = []
        self.corpus: list = []
        self._fit: tuple[list, list] | None = None
        self._eval: list[dict] | None = None
        self.languages: list[str] = []
        self.stats: dict[str, float] = {}

    # --- reading and splitting -------------------------------------------------------------
    def load(self, path: Any) -> list:
        records = super().load(path)
        self._loaded.extend(records)
        return records

    def build_splits(self) -> Splits:
        if self.path and self.test_months > 1 and self.split in ("time", "auto"):
            splits = window_time_split(self.load(self.path), self.seed, self.dev_fraction, self.test_months)
        else:
            splits = super().build_splits()
        original = lambda r: not r.source_id  # noqa: E731
        if not splits.traffic and splits.test_month is None:  # random split: the test set is the traffic
            splits.traffic = list(splits.test)
        self.corpus = [r for r in self._loaded if r.source_id]
        if self.parallel_corpus.path:
            extra = super().load(self.parallel_corpus.path)
            self.corpus += [r for r in extra if r.source_id]
        eval_ids = {r.id for r in splits.test + splits.traffic}
        # the pool is what FCC filtered out *before* the test period (no look-ahead into traffic)
        start = (
            min((r.created_at for r in splits.traffic if not r.source_id), default=None) if splits.test_month else None
        )
        pool = [
            r
            for r in self._loaded
            if original(r) and r.label is None and r.id not in eval_ids and (start is None or r.created_at < start)
        ]
        nn = self.noisy_negatives
        if nn.unlabeled_path:
            extra = super().load(nn.unlabeled_path)
            pool += [r for r in extra if original(r) and r.label is None]
        self.pool = [r for r in pool if not (nn.exclude_escalated and r.escalated)]
        out = Splits(
            train=[r for r in splits.train if original(r) and r.label is not None],
            dev=[r for r in splits.dev if original(r) and r.label is not None],
            test=[r for r in splits.test if original(r) and r.label is not None],
            traffic=[r for r in splits.traffic if original(r)],
            test_month=splits.test_month,
        )
        for name in ("train", "dev"):
            labels = sorted({r.label for r in getattr(out, name)})
            if labels != [0, 1]:
                where = str(self.path or getattr(self, f"{name}_path") or self.train_path)
                raise DataValidationError(
                    [
                        Problem(
                            where,
                            0,
                            "label",
                            (
                                f"the {name} split needs labeled positives (1) and negatives (0) but has labels "
                                f"{labels} ({len(getattr(out, name))} labeled original claims before test period "
                                f"{out.test_month})"
                            ),
                        )
                    ]
                )
        return out

    def task_info(self) -> dict[str, Any]:
        return {"labels": list(LABELS)}

    # --- 001 §3.1 augmentation -------------------------------------------------------------
    def mine(self, labeled: Sequence[Any]) -> list:
        """001 §3.1 / Fig. 2: pool comments outside every labeled positive's beta-ball, as label 0."""
        if not self.pool:
            rank_zero_info(
                "[claims] noisy negatives: no unlabeled pool (no label=null comments before the test "
                "period, or all escalated); original+NN adds nothing"
            )
            return []
        keep, res, pool = self.noisy_negatives.mine(labeled, self.pool, self.seed, self.progress)
        mined = [
            dataclasses.replace(
                pool[i], label=0, case_type=SAFETY_LABELS[0], extra={**pool[i].extra, "noisy_negative": True}
            )
            for i in keep
        ]
        self.stats.update(
            {
                "data/nn_pool": len(self.pool),
                "data/nn_pool_embedded": len(pool),
                "data/nn_candidates": len(res.candidates),
                "data/nn_mined": len(mined),
            }
        )
        truth = [t for t in (pool[i].extra.get("true_label") for i in keep) if t in (0, 1)]
        if truth:  # simulated pools (scripts/cpsc_to_claims.py) know the hidden label: share truly negative
            self.stats["data/nn_purity"] = 1.0 - sum(truth) / len(truth)
        return mined

    def fit_items(self) -> tuple[list, list]:
        """(train, dev) records of the configured variant; cached so prepare_data and setup agree."""
        if self._fit is None:
            s = self.validate()
            train, dev = list(s.train), list(s.dev)
            if self.variant != "original":
                for r in self.mine(train + dev):
                    (dev if self.augment_dev and hash_unit(r.id, self.seed) < self.dev_fraction else train).append(r)
            if self.variant == "original+NN+PC":
                tr = self.parallel_corpus.for_training(self.corpus)
                languages = self.parallel_corpus.languages
                train += tr.translate(s.train, languages)
                if self.augment_dev:
                    dev += tr.translate(s.dev, languages)
                if not any(r.source_id for r in train):
                    rank_zero_info(
                        "[claims] parallel corpus: no translations found for training claims; "
                        "original+NN+PC equals original+NN here"
                    )
            self._fit = (train, dev)
            self._report(train, dev)
        return self._fit

    def _report(self, train: list, dev: list) -> None:
        """Table 2's statistics (size / mean #words) of this run's splits."""
        s = self.validate()  # built before the fit splits are
        rows = {"train": train, "dev": dev, "test": s.test, "traffic": s.traffic}
        for name, recs in rows.items():
            self.stats[f"data/{name}_size"] = len(recs)
            self.stats[f"data/{name}_words"] = sum(len(r.text.split()) for r in recs) / max(1, len(recs))
        self.stats["data/train_translations"] = sum(bool(r.source_id) for r in train)
        line = ", ".join(f"{k} {len(v)} / {self.stats[f'data/{k}_words']:.1f}" for k, v in rows.items())
        rank_zero_info(
            f"[claims] variant {self.variant} (test period {s.test_month}): size / #words: {line}; "
            + ", ".join(f"{k.split('/')[1]}={v:g}" for k, v in self.stats.items() if "nn_" in k)
        )

    # --- items and batches -----------------------------------------------------------------
    def eval_items(self) -> list[dict]:
        """Test originals + their translations (fairness) + traffic originals (volume), deduplicated."""
        if self._eval is None:
            s = self.validate()
            test_ids, traffic_ids = {r.id for r in s.test}, {r.id for r in s.traffic}
            originals = list({r.id: r for r in s.test + s.traffic}.values())
            pc = self.parallel_corpus
            translations = pc.for_evaluation(self.corpus).translate(s.test, pc.languages)
            records = originals + translations
            self.languages = sorted({r.language for r in records})
            group = {r.id: i for i, r in enumerate(originals)}
            self._eval = [
                self._item(i, r, group[r.source_id or r.id], (r.source_id or r.id) in test_ids, r.id in traffic_ids)
                for i, r in enumerate(records)
            ]
        return self._eval

    def _item(self, i: int, r: Any, group: int, in_test: bool, in_traffic: bool) -> dict:
        escalated = bool(r.escalated) or (r.escalated is None and self.labeled_means_escalated and r.label is not None)
        return {
            "id": r.id,
            "text": r.text,
            "label": -1 if r.label is None else r.label,
            "index": i,
            "language": self.languages.index(r.language) if r.language in self.languages else -1,
            "group": group,
            "in_test": in_test and r.label is not None,
            "in_traffic": in_traffic,
            "is_original": not r.source_id,
            "escalated": escalated,
        }

    def connect(self, tokenizer: Any = None, max_length: int | None = None, **limits: Any) -> None:
        """The model's tokenizer and input length (model.max_length)."""
        super().connect(tokenizer, **limits)
        self.max_length = max_length

    def collate(self, items: list[dict]) -> dict[str, Any]:
        if self.tokenizer is None:
            raise RuntimeError("ProductSafetyDataModule.connect(tokenizer=...) must be called before batching")
        batch = dict(
            self.tokenizer(
                [x["text"] for x in items],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        )
        batch = pad_encoding(batch, self.pad_to_multiple_of, self.tokenizer.pad_token_id)
        batch["labels"] = torch.tensor([x["label"] for x in items], dtype=torch.long)
        for key in INT_FIELDS:
            if key in items[0]:
                batch[key] = torch.tensor([int(x[key]) for x in items], dtype=torch.long)
        batch["ids"] = [x["id"] for x in items]
        return batch

    def _train_items(self, records: list) -> list[dict]:
        return [
            {"id": r.id, "text": r.text, "label": -1 if r.label is None else r.label, "index": i}
            for i, r in enumerate(records)
        ]

    def prepare_data(self) -> None:
        # rank 0 fills the embedding/translation caches; other ranks hit them in setup
        if self.trainer is None or self.trainer.state.fn in ("fit", "validate"):
            self.fit_items()

    def setup(self, stage: str | None = None) -> None:
        self.validate()
        if stage in (None, "fit", "validate"):
            self.fit_items()
        if stage in (None, "test"):
            self.eval_items()

    def train_dataloader(self):
        """(seed, epoch)-shuffled batches; with `group_by_length`, of similar-length claims (a batch
        costs as much as its longest claim: ~40% less padding on the demo data)."""
        items = self._train_items(self.fit_items()[0])
        sampler = EpochBatchSampler(
            EpochRandomSampler(items, self.seed),
            self.per_device_batch_size(self.batch_size),
            lengths=[len(x["text"]) for x in items] if self.group_by_length else None,
            group_size=4,
            seed=self.seed,
            resume_at=self.resume_position(),
        )
        return DataLoader(_EpochItems(items), batch_sampler=sampler, collate_fn=self.collate, **self.loader_options())

    def val_dataloader(self):
        return self.loader(_by_length(self._train_items(self.fit_items()[1])), self.collate, train=False)

    def test_dataloader(self):
        return self.loader(_by_length(self.eval_items()), self.collate, train=False)

    def predict_records(self) -> list:
        """`predict_path` claims (batch prediction), else the traffic comments."""
        return super().load(self.predict_path) if self.predict_path else list(self.validate().traffic)

    def predict_dataloader(self):
        return self.loader(self._train_items(self.predict_records()), self.collate, train=False)


def _by_length(items: list[dict]) -> list[dict]:
    """Evaluation order by text length: batches of similar length need less padding (results
    are matched back by `index`, so order does not matter)."""
    return sorted(items, key=lambda x: len(x["text"]))


class _EpochItems(ListDataset):
    """EpochBatchSampler yields (epoch, index) keys; claims need no per-epoch augmentation."""

    def __getitem__(self, key: Any) -> Any:
        return self.items[key[1] if isinstance(key, tuple) else key]
