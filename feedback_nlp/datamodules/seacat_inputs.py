"""A transcript as SeaCat's network reads it (002 §2.2-2.3): sentences, speakers, offsets, tensors.

Why here: the trainer's DataModule and the serving predictor must build exactly the same
tensors from a transcript, and serving may not import the DataModule (it imports Lightning).
`featurize` needs only `.id` and `.turns` (speaker, text); `label` and `main_question` are read
when present. The collate function tokenizes ONLY the real sentences, once each, as one flat
block padded to the longest, plus the index map that scatters their embeddings back into
(batch, sentence); see datamodules/seacat.py for the data-side story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from feedback_nlp.core.padding import pad_encoding
from feedback_nlp.core.sentences import split_sentences


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
    positions: list[int]  # 002 §2.3: offset from the agent's first sentence, + S
    agent_first: int
    label: str | None = None
    main_question: str | None = None


def featurize(t: Any, max_sentences: int) -> TranscriptFeatures:
    """Split every turn with the shared splitter (002 §2.2); one speaker per sentence."""
    pairs = [(turn.speaker, s) for turn in t.turns for s in split_sentences(turn.text)][:max_sentences]
    speakers, sentences = [p[0] for p in pairs], [p[1] for p in pairs]
    return TranscriptFeatures(
        t.id,
        sentences,
        speakers,
        offset_positions(speakers, max_sentences),
        agent_first_index(speakers),
        getattr(t, "label", None),
        getattr(t, "main_question", None),
    )


def collate_features(
    features: Sequence[TranscriptFeatures],
    tokenizer: Any,
    max_tokens: int,
    label_index: Mapping[str, int] | None = None,
    dedupe: bool = True,
    pad_to_multiple_of: int | None = None,
) -> dict[str, Any]:
    """Batch transcripts: flat tokens of the real sentences + the map back to (batch, sentence).

    Returns input_ids / attention_mask (U x T, U = distinct real sentences, T = longest of
    them, <= max_tokens), `sentence_source` (R: row in the U block of each real sentence, in
    batch order), `sentence_index` (R: its flat slot b * S + s in the B x S grid),
    `sentence_mask` / `positions` / `is_customer` (B x S, S = most sentences in the batch),
    `labels` (B; -100 when unknown) and the raw ids, sentences and speakers for predictions.
    """
    if tokenizer is None:
        raise RuntimeError("SeaCatDataModule: no tokenizer connected (call connect(tokenizer=...))")
    n_max = max(1, max(len(f.sentences) for f in features))
    flat: list[str] = []
    slots: list[int] = []
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
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "sentence_source": torch.tensor(source, dtype=torch.long),
        "sentence_index": torch.tensor(slots, dtype=torch.long),
        "sentence_mask": mask,
        "positions": positions,
        "is_customer": customer,
        "labels": torch.tensor(labels, dtype=torch.long),
        "ids": [f.id for f in features],
        "sentences": [f.sentences for f in features],
        "speakers": [f.speakers for f in features],
        "agent_first": [f.agent_first for f in features],
        "main_question": [f.main_question for f in features],
    }
