"""Reproducible per-sample shuffling of sentences and label lists (shared infrastructure).

Why: 000 §4.2 (sentence & issue shuffling) — the order of issues carries no meaning, so in
training both the input sentences and the target issues are permuted per sample, inducing the
model to ignore order. The permutation is a pure function of (seed, epoch, sample key): a
resumed run, a DataLoader worker and every DDP rank all draw the same order for the same sample,
and a new epoch draws a new one. Nothing here is task-specific; any task can shuffle any list.
"""

from __future__ import annotations

import hashlib
import random
from typing import Callable, Sequence, TypeVar

from feedback_nlp.core.sentences import split_sentences

T = TypeVar("T")


def sample_rng(seed: int, epoch: int, key: str, stream: str = "") -> random.Random:
    """A `random.Random` seeded from (seed, epoch, key, stream) by SHA-256 (stable across processes).

    `stream` separates independent draws for the same sample (e.g. "sentences" vs "issues").
    """
    digest = hashlib.sha256(f"{seed}:{epoch}:{stream}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def shuffled(items: Sequence[T], seed: int, epoch: int, key: str, stream: str = "items") -> list[T]:
    """A permuted copy of `items`; the same (seed, epoch, key, stream) always gives the same order."""
    out = list(items)
    sample_rng(seed, epoch, key, stream).shuffle(out)
    return out


def shuffle_sentences(
    text: str, seed: int, epoch: int, key: str, splitter: Callable[[str], list[str]] = split_sentences
) -> str:
    """`text` with its sentences permuted and re-joined by single spaces.

    A text with one sentence comes back unchanged (not even whitespace-normalised), so shuffling
    never alters inputs it cannot reorder.
    """
    sentences = splitter(text)
    if len(sentences) < 2:
        return text
    return " ".join(shuffled(sentences, seed, epoch, key, "sentences"))
