"""T5-style span infilling samples made on the fly from any text (000 App. A, auxiliary task).

Why: 000 App. A trains the issue model with token span infilling as an auxiliary task: "randomly
replacing spans of tokens by single sentinel tokens; the target corresponds to all of the
dropped-out spans, delimited by the same sentinel tokens". Spans are cut over whitespace words,
not model tokens, so one function serves T5, BART, Pegasus and BERT tokenizers alike; the
sentinel names are T5's (`<extra_id_0>`, ...), which models without them add as special tokens.
"""

from __future__ import annotations

import random


def sentinel_tokens(n: int) -> list[str]:
    """The first `n` sentinel token strings, T5's naming."""
    return [f"<extra_id_{i}>" for i in range(n)]


def _random_partition(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` positive integers, uniformly over the cut points."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, total]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def random_spans_mask(
    length: int,
    rng: random.Random,
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    max_spans: int | None = None,
) -> list[bool]:
    """A mask over `length` words: True marks a noise (dropped) word; T5's `random_spans_noise_mask`.

    About `noise_density` of the words are dropped (at least one, never all) in spans of mean
    length `mean_span_length`. Kept runs separate the spans; the first and last kept runs may be
    empty, so a span can sit anywhere, the text's start and end included (seqio's random roll).
    """
    if length < 2:
        raise ValueError(f"span infilling needs at least 2 words, got {length}")
    num_noise = min(max(1, round(length * noise_density)), length - 1)
    num_keep = length - num_noise
    num_spans = max(1, round(num_noise / mean_span_length))
    num_spans = min(num_spans, num_noise, num_keep + 1, max_spans or num_noise)
    noise = _random_partition(num_noise, num_spans, rng)
    keep = _random_partition(num_keep + 2, num_spans + 1, rng)  # first/last may be empty: +1 each
    keep[0] -= 1
    keep[-1] -= 1
    mask: list[bool] = []
    for k, m in zip(keep, noise):
        mask += [False] * k + [True] * m
    return mask + [False] * keep[-1]


def make_span_infilling(
    text: str, rng: random.Random, noise_density: float = 0.15, mean_span_length: float = 3.0, num_sentinels: int = 100
) -> tuple[str, str] | None:
    """(source, target) for one text, or None when it has fewer than two words.

    source: the text with each dropped span replaced by one sentinel;
    target: each sentinel followed by the words it replaced, closed by the next sentinel
    ("<extra_id_0> a b <extra_id_1> c <extra_id_2>"), exactly T5's format.
    """
    words = text.split()
    if len(words) < 2:
        return None
    mask = random_spans_mask(len(words), rng, noise_density, mean_span_length, max_spans=num_sentinels - 1)
    sentinels = sentinel_tokens(num_sentinels)
    source: list[str] = []
    target: list[str] = []
    span = -1
    for i, (word, dropped) in enumerate(zip(words, mask)):
        if dropped:
            if i == 0 or not mask[i - 1]:
                span += 1
                source.append(sentinels[span])
                target.append(sentinels[span])
            target.append(word)
        else:
            source.append(word)
    target.append(sentinels[span + 1])
    return " ".join(source), " ".join(target)
