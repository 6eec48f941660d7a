from feedback_nlp.datamodules.sentences import split_sentences


def test_splits_on_terminators_and_newlines():
    assert split_sentences("Hi! Can you help? I got the wrong size.\nThanks") == [
        "Hi!", "Can you help?", "I got the wrong size.", "Thanks"]


def test_keeps_abbreviations_decimals_and_initials():
    assert split_sentences("It cost 3.50 euros. Mr. Smith agreed, e.g. twice. Das ist z.B. gut.") == [
        "It cost 3.50 euros.", "Mr. Smith agreed, e.g. twice.", "Das ist z.B. gut."]


def test_empty_and_whitespace():
    assert split_sentences("   ") == [] and split_sentences("no terminator") == ["no terminator"]
