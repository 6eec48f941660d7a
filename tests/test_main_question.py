"""002 §2.4: rule 1 / rule 2 main-question pickers and their accuracy."""

from __future__ import annotations

import pytest

from feedback_nlp.nets.main_question import is_main_question, pick, pick_rule1, pick_rule2, rule_accuracy

#           0           1           2        3           4        5           6           7
SPEAKERS = ["customer", "customer", "agent", "customer", "agent", "customer", "customer", "agent"]
WEIGHTS = [0.05, 0.20, 0.30, 0.15, 0.02, 0.03, 0.22, 0.03]


def test_rule1_is_the_customer_sentence_with_the_highest_weight():
    assert pick_rule1(WEIGHTS, SPEAKERS) == 6  # 0.30 belongs to the agent


def test_rule2_only_looks_within_two_sentences_of_the_agent_first_sentence():
    assert pick_rule2(WEIGHTS, SPEAKERS, agent_first=2, window=2) == 1  # 6 is 4 steps away
    assert pick_rule2(WEIGHTS, SPEAKERS, agent_first=2, window=4) == 6
    assert pick_rule2(WEIGHTS, SPEAKERS, agent_first=2, window=0) == 6  # no customer at offset 0: rule 1


def test_rule2_without_customer_sentences_returns_none():
    assert pick_rule2([0.5, 0.5], ["agent", "agent"], agent_first=0) is None
    assert pick_rule1([0.5, 0.5], ["agent", "agent"]) is None


def test_pick_dispatches_and_rejects_unknown_rules():
    assert pick("rule1", WEIGHTS, SPEAKERS, 2) == 6
    assert pick("rule2", WEIGHTS, SPEAKERS, 2) == 1
    with pytest.raises(ValueError, match="rule3"):
        pick("rule3", WEIGHTS, SPEAKERS, 2)


def test_is_main_question_normalises_and_accepts_a_sentence_of_the_annotation():
    assert is_main_question("Where is my  package?", "where is my package?")
    assert is_main_question("Where is my package?", "Hi. Where is my package? Thanks.")
    assert not is_main_question("Hi.", "Where is my package?")
    assert not is_main_question(None, "Where is my package?")


def test_rule_accuracy_counts_only_annotated_transcripts():
    picked = ["Where is my package?", "Hello.", "Refund please.", "x"]
    annotated = ["Where is my package?", "Can I return it?", None, ""]
    assert rule_accuracy(picked, annotated) == (1, 2)
