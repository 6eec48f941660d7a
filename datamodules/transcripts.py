"""Customer-agent transcripts for SeaCat (002 §2): sentences, speakers, offset positions.

Why: SeaCat treats a transcript as a sequence of sentences (002 §2.2, "time-distributed": one
sentence per step). The paper pads every transcript to 64 sentences x 128 tokens and runs the
encoder on the whole block; most of that block is padding (real chats have ~10-30 short
sentences). So the collate function tokenizes ONLY the real sentences, as one flat batch
padded to its longest sentence (identical sentences -- greetings, closings -- once), and
returns the index map that scatters the sentence embeddings back into (batch, sentences).
The result is the same as the padded block's for every real sentence; padded sentences are
masked out of the attention either way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from feedback_nlp.datamodules.batching import pad_encoding
from feedback_nlp.datamodules.base import RecordDataModule
from feedback_nlp.datamodules.records import Transcript
from feedback_nlp.datamodules.sentences import split_sentences


def agent_first_index(speakers: Sequence[str]) -> int:
    """Index of the agent's first sentence; len(speakers) when the agent never speaks (the
    customer's sentences then all precede where the agent's reply would be)."""
    return next((i for i, s in enumerate(speakers) if s == "agent"), len(speakers))


def offset_positions(speakers: Sequence[str], max_sentences: int) -> list[int]:
    """002 §2.3: position index (i - agent_first) + S of every sentence, clipped to [0, 2S]."""
    first = agent_first_index(speakers)
    return [min(max(i - first + max_sentences, 0), 2 * max_sentences) for i in range(len(speakers))]


@dataclass
class TranscriptFeatures:
    """One transcript as SeaCat sees it (first `max_sentences` sentences)."""

    id: str
    sentences: list[str]
    speakers: list[str]
    positions: list[int]     # 002 §2.3: offset from the agent's first sentence, + S
    agent_first: int
    label: str | None = None
    main_question: str | None = None


def featurize(t: Transcript, max_sentences: int) -> TranscriptFeatures:
    """Split every turn with the shared splitter (002 §2.2); one speaker per sentence."""
    pairs = [(turn.speaker, s) for turn in t.turns for s in split_sentences(turn.text)][:max_sentences]
    speakers, sentences = [p[0] for p in pairs], [p[1] for p in pairs]
    return TranscriptFeatures(t.id, sentences, speakers, offset_positions(speakers, max_sentences),
                              agent_first_index(speakers), t.label, t.main_question)


def collate_features(features: Sequence[TranscriptFeatures], tokenizer: Any, max_tokens: int,
                     label_index: Mapping[str, int] | None = None, dedupe: bool = True,
                     pad_to_multiple_of: int | None = None) -> dict[str, Any]:
    """Batch transcripts: flat tokens of the real sentences + the map back to (batch, sentence).

    Returns input_ids / attention_mask (U x T, U = distinct real sentences, T = longest of
    them, <= max_tokens), `sentence_source` (R: row in the U block of each real sentence, in
    batch order), `sentence_index` (R: its flat slot b * S + s in the B x S grid),
    `sentence_mask` / `positions` / `is_customer` (B x S, S = most sentences in the batch),
    `labels` (B; -100 when unknown) and the raw ids, sentences and speakers for predictions.
    """
    if tokenizer is None:
        raise RuntimeError("TranscriptsDataModule: no tokenizer connected (call connect(tokenizer=...))")
    n_max = max(1, max(len(f.sentences) for f in features))
    flat, slots = [], []
    for b, f in enumerate(features):
        flat.extend(f.sentences)
        slots.extend(b * n_max + s for s in range(len(f.sentences)))
    if dedupe:
        unique: dict[str, int] = {}
        source = [unique.setdefault(s, len(unique)) for s in flat]
        texts = list(unique)
    else:
        source, texts = list(range(len(flat))), flat
    enc = tokenizer(texts or [""], padding="longest", truncation=True, max_length=max_tokens, return_tensors="pt")
    enc = pad_encoding(enc, pad_to_multiple_of, tokenizer.pad_token_id)
    shape = (len(features), n_max)
    mask = torch.zeros(shape, dtype=torch.bool)
    positions = torch.zeros(shape, dtype=torch.long)
    customer = torch.zeros(shape, dtype=torch.bool)
    for b, f in enumerate(features):
        n = len(f.sentences)
        mask[b, :n] = True
        positions[b, :n] = torch.tensor(f.positions, dtype=torch.long)
        customer[b, :n] = torch.tensor([s == "customer" for s in f.speakers], dtype=torch.bool)
    labels = [label_index.get(f.label, -100) if label_index and f.label is not None else -100 for f in features]
    return {
        "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
        "sentence_source": torch.tensor(source, dtype=torch.long),
        "sentence_index": torch.tensor(slots, dtype=torch.long),
        "sentence_mask": mask, "positions": positions, "is_customer": customer,
        "labels": torch.tensor(labels, dtype=torch.long),
        "ids": [f.id for f in features], "sentences": [f.sentences for f in features],
        "speakers": [f.speakers for f in features], "agent_first": [f.agent_first for f in features],
        "main_question": [f.main_question for f in features],
    }


class TranscriptsDataModule(RecordDataModule):
    """Transcript JSONL -> SeaCat batches; labels = product/service classes seen in train."""

    kind = "transcript"

    def __init__(self, path: str | None = None, train_path: str | None = None, dev_path: str | None = None,
                 test_path: str | None = None, field_map: Mapping[str, str] | None = None, split: str = "auto",
                 dev_fraction: float = 0.1, test_fraction: float = 0.2, test_month: str | None = None,
                 seed: int = 0, batch_size: int = 16, eval_batch_size: int | None = None, num_workers: int | None = 0,
                 max_sentences: int = 64, max_tokens: int = 128, dedupe_sentences: bool = True,
                 predict_split: str = "test", pin_memory: bool | None = None,
                 pad_to_multiple_of: int | None = None):
        super().__init__(path=path, train_path=train_path, dev_path=dev_path, test_path=test_path,
                         field_map=field_map, split=split, dev_fraction=dev_fraction, test_fraction=test_fraction,
                         test_month=test_month, seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         num_workers=num_workers, pin_memory=pin_memory, pad_to_multiple_of=pad_to_multiple_of)
        if max_sentences < 1 or max_tokens < 2:
            raise ValueError(f"max_sentences must be >= 1 and max_tokens >= 2, got {max_sentences}, {max_tokens}")
        if predict_split not in ("train", "dev", "test", "traffic"):
            raise ValueError(f"predict_split must be train, dev, test or traffic, got {predict_split!r}")
        self.max_sentences, self.max_tokens = max_sentences, max_tokens
        self.dedupe_sentences, self.predict_split = dedupe_sentences, predict_split
        self._features: dict[str, list[TranscriptFeatures]] = {}
        self._label_index: dict[str, int] | None = None

    def task_info(self) -> dict[str, Any]:
        splits = self.validate()
        labels = sorted({t.label for t in splits.train})
        if not labels:
            raise ValueError("TranscriptsDataModule: the train split is empty")
        return {"labels": labels}

    def features(self, split: str) -> list[TranscriptFeatures]:
        if split not in self._features:
            self._features[split] = [featurize(t, self.max_sentences) for t in getattr(self.validate(), split)]
        return self._features[split]

    def collate(self, features: Sequence[TranscriptFeatures]) -> dict[str, Any]:
        if self._label_index is None:
            self._label_index = {label: i for i, label in enumerate(self.task_info()["labels"])}
        return collate_features(features, self.tokenizer, self.max_tokens, self._label_index, self.dedupe_sentences,
                                self.pad_to_multiple_of)

    def train_dataloader(self):
        return self.loader(self.features("train"), self.collate, train=True)

    def val_dataloader(self):
        return self.loader(self.features("dev"), self.collate, train=False)

    def test_dataloader(self):
        return self.loader(self.features("test"), self.collate, train=False)

    def predict_dataloader(self):
        return self.loader(self.features(self.predict_split), self.collate, train=False)
