"""ROUGE-1/2 F (000 §4.3) agrees with the `rouge-score` package on real sentences."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from feedback_nlp.metrics.rouge import RougeF

PAIRS = [
    ("minor scratches", "minor cosmetic defects, fitting issue"),
    ("size issue, not as described", "size issue, material issue, not as described"),
    ("quality issue", "quality issue"),
    (
        "no power cable included, box has been opened, item looks used",
        "missing parts issue, opened box, used condition",
    ),
    (
        "Instructions were hard to read; some of it was written in another language!",
        "instructions hard to read, written in another language, looks different from picture",
    ),
    ("The batteries died after 2 days... 100% disappointed (again).", "battery issue, batteries died after 2 days"),
    ("Lieferung verspätet, Verpackung beschädigt", "late delivery, packaging issue"),
    ("running runs ran runner", "run running"),
    ("e-mail: it's 3x/day, naïve café", "naive cafe email"),
    ("", "quality issue"),
    ("quality issue", ""),
    ("the the the the", "the the"),
]


@pytest.mark.parametrize("stem", [False, True])
@pytest.mark.parametrize("pred,ref", PAIRS)
def test_rouge_n_matches_rouge_score(pred, ref, stem):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=stem)
    expected = scorer.score(ref, pred)  # rouge-score takes (target, prediction)
    for n, key in ((1, "rouge1"), (2, "rouge2")):
        metric = RougeF(n, use_stemmer=stem)
        metric.update([pred], [ref])
        assert float(metric.fmeasure()) == pytest.approx(expected[key].fmeasure, abs=1e-6)


def test_hand_computed_value():
    # commas vanish: pred bigrams (size issue)(issue not)(not as)(as described) all occur among the
    # reference's 6 (size issue)(issue material)(material issue)(issue not)(not as)(as described):
    # P = 4/4, R = 4/6, F = 2PR/(P+R) = 0.8
    metric = RougeF(2)
    metric.update(["size issue, not as described"], ["size issue, material issue, not as described"])
    assert float(metric.fmeasure()) == pytest.approx(0.8, abs=1e-6)


def test_metric_is_mean_of_per_feedback_f_and_joins_issue_lists():
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    metric = RougeF(n=1)
    metric.update(
        [["minor scratches"], ["size issue", "not as described"]],
        [["minor cosmetic defects", "fitting issue"], ["size issue", "material issue", "not as described"]],
    )
    metric.update(["quality issue"], ["quality issue"])
    expected = [
        scorer.score(t, p)["rouge1"].fmeasure
        for p, t in [
            ("minor scratches", "minor cosmetic defects, fitting issue"),
            ("size issue, not as described", "size issue, material issue, not as described"),
            ("quality issue", "quality issue"),
        ]
    ]
    assert float(metric.fmeasure()) == pytest.approx(sum(expected) / 3, abs=1e-6)


def test_states_merge_across_processes():
    """Two ranks' halves gathered (DDP sync concatenates list states) equal one metric over everything."""
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    whole, a, b = RougeF(2), RougeF(2), RougeF(2)
    whole.update(preds, refs)
    a.update(preds[:5], refs[:5])
    b.update(preds[5:], refs[5:])
    assert a._reductions and all(isinstance(getattr(a, name), list) for name in a._defaults)
    for name in a._defaults:
        getattr(a, name).extend(getattr(b, name))
    assert float(a.fmeasure()) == pytest.approx(float(whole.fmeasure()), abs=1e-7)
    assert float(whole.fmeasure()) > 0


def test_rejects_mismatched_lengths_and_bad_n():
    with pytest.raises(ValueError, match="1 predictions for 2 targets"):
        RougeF(1).update(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="1 <= n <= 9"):
        RougeF(0)
