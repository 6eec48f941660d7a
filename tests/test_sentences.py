"""The shared sentence splitter on English, German, Chinese and Japanese text (hand-written
expectations)."""

import pytest

from feedback_nlp.core.sentences import split_sentences


def test_splits_on_terminators_and_newlines():
    assert split_sentences("Hi! Can you help? I got the wrong size.\nThanks") == [
        "Hi!",
        "Can you help?",
        "I got the wrong size.",
        "Thanks",
    ]


def test_keeps_abbreviations_decimals_and_initials():
    assert split_sentences("It cost 3.50 euros. Mr. Smith agreed, e.g. twice. Call me at 3 p.m. today.") == [
        "It cost 3.50 euros.",
        "Mr. Smith agreed, e.g. twice.",
        "Call me at 3 p.m. today.",
    ]


def test_lowercase_starts_are_sentences():
    """Customers rarely capitalise: the old regex merged these into one sentence."""
    assert split_sentences("the zipper broke. it was new. i want a refund!") == [
        "the zipper broke.",
        "it was new.",
        "i want a refund!",
    ]


def test_everyday_words_are_not_abbreviations():
    """pysbd's English list has US state codes ("me" = Maine): not in customer text."""
    assert split_sentences("I hope you can help me. I was charged for Prime. It is ok. I think so.") == [
        "I hope you can help me.",
        "I was charged for Prime.",
        "It is ok.",
        "I think so.",
    ]
    assert split_sentences("Order no. 12345 arrived. Dr. Who called.") == [
        "Order no. 12345 arrived.",
        "Dr. Who called.",
    ]


def test_german():
    assert split_sentences(
        "Der Reißverschluss ist kaputt. Das ist z.B. schlecht. Wann kommt die Bestellung?", language="de"
    ) == ["Der Reißverschluss ist kaputt.", "Das ist z.B. schlecht.", "Wann kommt die Bestellung?"]


@pytest.mark.parametrize("language", [None, "zh"])
def test_chinese_without_spaces(language):
    assert split_sentences("拉链坏了。我想退款！订单什么时候到？", language=language) == [
        "拉链坏了。",
        "我想退款！",
        "订单什么时候到？",
    ]


@pytest.mark.parametrize("language", [None, "ja"])
def test_japanese_without_spaces(language):
    assert split_sentences("ジッパーが壊れました。返金してください！注文はいつ届きますか？", language=language) == [
        "ジッパーが壊れました。",
        "返金してください！",
        "注文はいつ届きますか？",
    ]


def test_empty_unknown_language_and_no_terminator():
    assert split_sentences("   ") == [] and split_sentences("no terminator") == ["no terminator"]
    assert split_sentences("One. Two.", language="xx-YY") == ["One.", "Two."]  # unknown: default rules
