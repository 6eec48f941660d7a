"""ROUGE-1/2 F (000 §4.3) agrees with the `rouge-score` package on real sentences."""
from __future__ import annotations

import pytest
import torch
from rouge_score import rouge_scorer, tokenize

from feedback_nlp.metrics.rouge import RougeF, porter_stemmer, rouge_n, rouge_tokenize

PAIRS = [
    ("minor scratches", "minor cosmetic defects, fitting issue"),
    ("size issue, not as described", "size issue, material issue, not as described"),
    ("quality issue", "quality issue"),
    ("no power cable included, box has been opened, item looks used",
     "missing parts issue, opened box, used condition"),
    ("Instructions were hard to read; some of it was written in another language!",
     "instructions hard to read, written in another language, looks different from picture"),
    ("The batteries died after 2 days... 100% disappointed (again).", "battery issue, batteries died after 2 days"),
    ("Lieferung verspätet, Verpackung beschädigt", "late delivery, packaging issue"),
    ("running runs ran runner", "run running"),
    ("", "quality issue"),
    ("quality issue", ""),
    ("the the the the", "the the"),
]


@pytest.mark.parametrize("text", [p for pair in PAIRS for p in pair] + ["e-mail: it's 3x/day, naïve café"])
def test_tokenizer_matches_rouge_score(text):
    assert rouge_tokenize(text) == tokenize.tokenize(text, None)
    assert rouge_tokenize(text, porter_stemmer()) == tokenize.tokenize(text, rouge_scorer.tokenizers.porter.PorterStemmer())


@pytest.mark.parametrize("stem", [False, True])
@pytest.mark.parametrize("pred,ref", PAIRS)
def test_rouge_n_matches_rouge_score(pred, ref, stem):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=stem)
    expected = scorer.score(ref, pred)  # rouge-score takes (target, prediction)
    stemmer = porter_stemmer() if stem else None
    for n, key in ((1, "rouge1"), (2, "rouge2")):
        p, r, f = rouge_n(pred, ref, n, stemmer)
        assert (p, r, f) == pytest.approx((expected[key].precision, expected[key].recall, expected[key].fmeasure))


def test_hand_computed_value():
    # commas vanish: pred bigrams (size issue)(issue not)(not as)(as described) all occur among the
    # reference's 6 (size issue)(issue material)(material issue)(issue not)(not as)(as described)
    p, r, f = rouge_n("size issue, not as described", "size issue, material issue, not as described", 2)
    assert (p, r) == pytest.approx((4 / 4, 4 / 6)) and f == pytest.approx(0.8)


def test_metric_is_mean_of_per_feedback_f_and_joins_issue_lists():
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    metric = RougeF(n=1)
    metric.update([["minor scratches"], ["size issue", "not as described"]],
                  [["minor cosmetic defects", "fitting issue"], ["size issue", "material issue", "not as described"]])
    metric.update(["quality issue"], ["quality issue"])
    expected = [scorer.score(t, p)["rouge1"].fmeasure for p, t in
                [("minor scratches", "minor cosmetic defects, fitting issue"),
                 ("size issue, not as described", "size issue, material issue, not as described"),
                 ("quality issue", "quality issue")]]
    assert float(metric.compute()) == pytest.approx(sum(expected) / 3, abs=1e-6)


def test_metric_states_sum_across_processes():
    """DDP reduces the states with "sum": two halves merged equal one metric over everything."""
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    whole, a, b = RougeF(2), RougeF(2), RougeF(2)
    whole.update(preds, refs)
    a.update(preds[:5], refs[:5])
    b.update(preds[5:], refs[5:])
    assert float(a.f_sum + b.f_sum) == pytest.approx(float(whole.f_sum))
    assert int(a.count + b.count) == int(whole.count) == len(PAIRS)
    assert all(s.dtype in (torch.float64, torch.long) for s in (whole.f_sum, whole.count))


def test_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        RougeF(1).update(["a"], ["a", "b"])
