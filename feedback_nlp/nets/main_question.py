"""002 §2.4: pick the customer's main question from SeaCat's sentence attention weights.

Rule 1: the customer sentence with the highest attention weight in the transcript.
Rule 2: the customer sentence with the highest weight among those at most `window` (paper: 2)
sentences before or after the agent's first sentence; the paper's standard (84.3% vs 76.7%).
Pure functions over plain lists, so the rules are testable without a model and the same code
serves training-time evaluation, the serving predictor and the repository builder (§3.1).
"""

from __future__ import annotations

import re
from typing import Sequence

from feedback_nlp.core.sentences import split_sentences

RULES = ("rule1", "rule2")


def pick_rule1(weights: Sequence[float], speakers: Sequence[str]) -> int | None:
    """Index of the customer sentence with the highest weight; None without customer sentences."""
    best = None
    for i, (w, s) in enumerate(zip(weights, speakers)):
        if s == "customer" and (best is None or w > weights[best]):
            best = i
    return best


def pick_rule2(weights: Sequence[float], speakers: Sequence[str], agent_first: int, window: int = 2) -> int | None:
    """Highest-weight customer sentence with |i - agent_first| <= window.

    Falls back to rule 1 when no customer sentence lies in the window (e.g. the customer
    only speaks late), so every transcript with a customer sentence gets a question.
    """
    best = None
    for i, (w, s) in enumerate(zip(weights, speakers)):
        if s == "customer" and abs(i - agent_first) <= window and (best is None or w > weights[best]):
            best = i
    return best if best is not None else pick_rule1(weights, speakers)


def pick(rule: str, weights: Sequence[float], speakers: Sequence[str], agent_first: int, window: int = 2) -> int | None:
    if rule == "rule1":
        return pick_rule1(weights, speakers)
    if rule == "rule2":
        return pick_rule2(weights, speakers, agent_first, window)
    raise ValueError(f"unknown main-question rule {rule!r}; expected one of {RULES}")


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def is_main_question(sentence: str | None, annotated: str) -> bool:
    """A picked sentence is correct when it is the annotated main question or one of its
    sentences (an annotation may span two sentences the shared splitter separates)."""
    if sentence is None:
        return False
    s = normalize(sentence)
    return s == normalize(annotated) or s in {normalize(x) for x in split_sentences(annotated)}


def rule_accuracy(picked: Sequence[str | None], annotated: Sequence[str | None]) -> tuple[int, int]:
    """(correct, evaluated) over transcripts whose `main_question` is annotated."""
    pairs = [(p, a) for p, a in zip(picked, annotated) if a]
    return sum(is_main_question(p, a) for p, a in pairs), len(pairs)
