"""001 §4.2 KPIs against hand-computed values (feedback_nlp/metrics/product_safety.py)."""

import math

import numpy as np
import pytest

from feedback_nlp.metrics.product_safety import (
    fairness_std,
    per_language,
    precision_recall_at,
    safety_kpis,
    threshold_at_recall,
    volumes,
)

# 8 dev comments, sorted by score; positives at 0.9, 0.8, 0.6, 0.3 (4 positives)
PROBS = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
LABELS = [1, 1, 0, 1, 0, 1, 0, 0]


@pytest.mark.parametrize(
    "target, threshold, recall, precision",
    [
        (0.75, 0.6, 0.75, 0.75),  # >= 0.6 keeps 3 of 4 positives with 1 false positive
        (0.95, 0.3, 1.0, 4 / 6),  # 95% of 4 positives needs all 4: down to 0.3, 2 false positives
        (1.0, 0.3, 1.0, 4 / 6),
        (0.5, 0.8, 0.5, 1.0),  # the highest threshold with 2 of 4 positives is 0.8
    ],
)
def test_threshold_at_recall_is_highest_threshold_reaching_target(target, threshold, recall, precision):
    choice = threshold_at_recall(PROBS, LABELS, target)
    assert choice.reached
    assert choice.threshold == pytest.approx(threshold)
    assert choice.recall == pytest.approx(recall)
    assert choice.precision == pytest.approx(precision)


def test_threshold_ignores_unlabeled_and_falls_back_without_positives():
    with_unlabeled = threshold_at_recall(PROBS + [0.99, 0.05], LABELS + [-1, -1], 0.95)
    assert with_unlabeled.threshold == pytest.approx(0.3)
    none = threshold_at_recall([0.2, 0.7], [0, 0], 0.95, fallback=0.42)
    assert not none.reached and none.threshold == 0.42 and none.recall is None
    with pytest.raises(ValueError):
        threshold_at_recall(PROBS, LABELS, 0.0)


def test_precision_recall_at_threshold():
    pr = precision_recall_at(PROBS, LABELS, 0.5)  # predicted: .9 .8 .7 .6 -> tp 3, fp 1, fn 1
    assert (pr["tp"], pr["fp"], pr["fn"]) == (3, 1, 1)
    assert pr["precision"] == pytest.approx(0.75) and pr["recall"] == pytest.approx(0.75)
    assert precision_recall_at([0.1, 0.2], [1, 0], 0.5)["precision"] == 0.0  # nothing predicted
    assert precision_recall_at([0.1, 0.2], [0, 0], 0.5)["recall"] is None  # no positives


def test_volumes_model_and_model_or_fcc():
    v = volumes([0.9, 0.2, 0.6, 0.1], 0.5, [False, True, True, False])
    assert v == {"volume_model": 2, "volume_model_or_fcc": 3, "volume_fcc": 2, "size": 4}


def test_fairness_std_mean_over_comments_with_translations():
    mean, n = fairness_std([0.2, 0.4, 0.6, 0.5, 0.5, 0.9], [0, 0, 0, 1, 1, 2])
    # group 0: population std of (.2,.4,.6) = sqrt(0.08/3); group 1: 0; group 2 has one version: left out
    assert n == 2
    assert mean == pytest.approx((math.sqrt(0.08 / 3) + 0.0) / 2)
    assert fairness_std([0.3], [7]) == (None, 0)


def test_per_language_breakdown():
    rows = per_language(
        [0.9, 0.2, 0.7, 0.8, 0.1],
        [1, 1, 0, -1, -1],
        ["de", "de", "en", "de", "en"],
        0.5,
        labeled_mask=[1, 1, 1, 0, 0],
        traffic_mask=[0, 0, 0, 1, 1],
    )
    assert rows["de"]["precision"] == 1.0 and rows["de"]["recall"] == 0.5 and rows["de"]["n"] == 2
    assert rows["de"]["volume_model"] == 1 and rows["de"]["traffic"] == 1
    assert rows["en"]["precision"] == 0.0 and rows["en"]["recall"] is None and rows["en"]["volume_model"] == 0


def test_safety_kpis_end_to_end_example():
    # 0,1: labeled test originals (also traffic); 2: German translation of 0; 3,4: unlabeled traffic
    probs = np.array([0.8, 0.3, 0.6, 0.7, 0.1])
    flat, rows = safety_kpis(
        probs,
        [1, 0, 1, -1, -1],
        0.5,
        in_test=[1, 1, 1, 0, 0],
        in_traffic=[1, 1, 0, 1, 1],
        is_original=[1, 1, 0, 1, 1],
        escalated=[1, 1, 0, 0, 1],
        group=[0, 1, 0, 3, 4],
        languages=["en", "en", "de", "en", "en"],
    )
    assert flat["test/precision"] == 1.0 and flat["test/recall"] == 1.0 and flat["test/support"] == 2
    assert flat["traffic/volume_model"] == 2  # 0.8 and 0.7 (the translation is not traffic)
    assert flat["traffic/volume_model_or_fcc"] == 4  # + escalated 0.3 and 0.1
    assert flat["test/fairness_std"] == pytest.approx(0.1) and flat["test/fairness_groups"] == 1
    assert flat["test/lang/de/recall"] == 1.0 and flat["traffic/lang/en/volume_model"] == 2
    assert "traffic/lang/de/volume_model" in flat and rows["de"]["traffic"] == 0
