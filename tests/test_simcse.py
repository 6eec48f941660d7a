"""SimCSE precision/recall/F1 counting (000 §4.3 eq. 1, App. B, Table 6) on hand-made embeddings."""

from __future__ import annotations

import math

import pytest
import torch

from feedback_nlp.metrics.simcse import (
    SimCSEScore,
    issue_simcse_prf,
    simcse_match_count,
    simcse_match_counts,
    simcse_precision_recall,
    simcse_scores,
)


def unit(*xs: float) -> list[float]:
    v = torch.tensor(xs, dtype=torch.float32)
    return (v / v.norm()).tolist()


# Hand-made 6-d embeddings: cos(minor scratches, minor cosmetic defects) = 0.8 (> 0.7, App. B's
# example of a semantic match); "minor scratches" vs "counterfeit issue" = 0.0; identical strings 1.
VECTORS = {
    "minor scratches": [1, 0, 0, 0, 0, 0],
    "minor cosmetic defects": [0.8, 0.6, 0, 0, 0, 0],
    "fitting issue": [0, 0, 1, 0, 0, 0],
    "counterfeit issue": [0, 0, 0, 1, 0, 0],
    "size issue": [0, 0, 0, 0, 1, 0],
    "not as described": [0, 0, 0, 0, 0, 1],
    "material issue": [0, 1, 0, 0, 0, 0],  # below 0.7 with every other issue
    "size or description issue": unit(0, 0, 0, 0, 1, 1),  # cos 0.707 with size issue AND not as described
    "quality issue": [0, 0, 0.6, 0.8, 0, 0],  # cos 0.6 with fitting issue, 0.8 with counterfeit
}


def embed(texts: list[str]) -> torch.Tensor:
    return torch.tensor([VECTORS[t] for t in texts], dtype=torch.float32)


TABLE6 = [  # (model output, human annotation, # match) — 000 Table 6
    (["minor scratches"], ["minor cosmetic defects", "fitting issue"], 1),
    (["size issue", "not as described"], ["size issue", "material issue", "not as described"], 2),
    (["quality issue"], ["quality issue"], 1),
]


def test_table6_match_counts():
    counts = simcse_match_counts([embed(g) for g, _, _ in TABLE6], [embed(a) for _, a, _ in TABLE6], 0.7)
    assert counts == [n for _, _, n in TABLE6] == [1, 2, 1]
    # "minor scratches" is no match for "counterfeit issue" (App. B's counter-example)
    assert simcse_match_count(embed(["minor scratches"]), embed(["counterfeit issue"]), 0.7) == 0


def test_every_matching_pair_counts_even_for_one_issue():
    """App. B: "we increment the number of matches by 1, even if there is more than one match for a
    given issue": one generated issue (cos 0.707 with two annotated issues) adds two matches."""
    g = embed(["size or description issue"])
    a = embed(["size issue", "material issue", "not as described"])
    assert simcse_match_count(g, a, 0.7) == 2
    # ...and precision is capped at 1 although matches (2) exceed generated issues (1)
    assert simcse_precision_recall(2, 1, 3) == (1.0, pytest.approx(2 / 3))


def test_threshold_is_strict_and_configurable():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.69, math.sqrt(1 - 0.69**2)]])
    c = torch.tensor([[0.71, math.sqrt(1 - 0.71**2)]])
    assert simcse_match_count(a, b, 0.7) == 0 and simcse_match_count(a, c, 0.7) == 1
    assert simcse_match_count(a, b, 0.6) == 1
    assert simcse_match_count(a, a, 1.0) == 0  # "> threshold", never ">="


def test_precision_recall_per_feedback_and_edge_cases():
    assert simcse_precision_recall(1, 1, 2) == (1.0, 0.5)
    assert simcse_precision_recall(2, 2, 3) == (1.0, pytest.approx(2 / 3))
    assert simcse_precision_recall(0, 0, 2) == (0.0, 0.0)  # nothing generated
    assert simcse_precision_recall(0, 2, 0) == (0.0, 0.0)  # nothing annotated
    assert simcse_precision_recall(0, 0, 0) == (1.0, 1.0)  # correctly generated nothing


def test_dataset_level_scores_average_feedback_and_f1_of_averages():
    gen = [g for g, _, _ in TABLE6]
    ann = [a for _, a, _ in TABLE6]
    per = simcse_scores(gen, ann, embed, 0.7)
    # row 1: 1 match -> P 1/1, R 1/2. row 2: 2 matches -> P 2/2, R 2/3. row 3: 1 -> P 1, R 1.
    assert per == [(1.0, 0.5), (1.0, pytest.approx(2 / 3)), (1.0, 1.0)]
    metric = SimCSEScore(embed, 0.7)
    metric.update(gen[:2], ann[:2])
    metric.update(gen[2:], ann[2:])
    out = metric.compute()
    p, r = 1.0, (0.5 + 2 / 3 + 1.0) / 3
    assert float(out["precision"]) == pytest.approx(p)
    assert float(out["recall"]) == pytest.approx(r, abs=1e-6)
    assert float(out["f1"]) == pytest.approx(2 * p * r / (p + r), abs=1e-6)


def test_metric_states_sum_like_ddp():
    gen = [g for g, _, _ in TABLE6]
    ann = [a for _, a, _ in TABLE6]
    whole, a, b = SimCSEScore(embed), SimCSEScore(embed), SimCSEScore(embed)
    whole.update(gen, ann)
    a.update(gen[:1], ann[:1])
    b.update(gen[1:], ann[1:])
    for state in ("precision_sum", "recall_sum", "count"):
        assert float(getattr(a, state) + getattr(b, state)) == pytest.approx(float(getattr(whole, state)))
    # DDP sync reduces each state across ranks with its dist_reduce_fx: it must be a sum (a mean
    # or max would average or drop a rank's feedback). Apply the registered reduction to per-rank
    # states stacked as torchmetrics gathers them, and merge rank b into rank a as a sync does.
    for state in ("precision_sum", "recall_sum", "count"):
        gathered = torch.stack([getattr(a, state), getattr(b, state)])
        assert float(a._reductions[state](gathered)) == pytest.approx(float(getattr(whole, state)))
    a.merge_state(b)
    merged, want = a.compute(), whole.compute()
    for key in ("precision", "recall", "f1"):
        assert float(merged[key]) == pytest.approx(float(want[key]))


def test_each_distinct_string_is_embedded_once():
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return embed(texts)

    simcse_scores([["quality issue"], ["quality issue", "size issue"]], [["quality issue"], ["size issue"]], counting)
    assert len(calls) == 1 and sorted(calls[0]) == ["quality issue", "size issue"]


def test_issue_level_prf_for_label_efficiency():
    gen = [["minor cosmetic defects"], ["size issue"], ["minor scratches"], []]
    ann = [["minor scratches"], ["minor scratches"], ["size issue"], ["quality issue"]]
    out = issue_simcse_prf("minor scratches", gen, ann, embed, 0.7)
    # predicted (a generated issue matches "minor scratches"): rows 0 and 2; annotated: rows 0 and 1
    assert (out["n_predicted"], out["n_annotated"]) == (2, 2)
    assert out["precision"] == pytest.approx(0.5) and out["recall"] == pytest.approx(0.5)
    assert out["f1"] == pytest.approx(0.5)


def test_real_sentence_embedder_scores_identical_issues_as_matches():
    from feedback_nlp.metrics.multilevel_issues import SentenceEmbedder

    embedder = SentenceEmbedder("packaged:all-MiniLM-L6-v2")
    v = embedder(["quality issue", "late delivery", "quality issue"])
    assert v.shape == (3, 384) and torch.allclose(v[0], v[2])
    assert torch.allclose(v.norm(dim=1), torch.ones(3), atol=1e-4)
    per = simcse_scores([["quality issue", "late delivery"]], [["quality issue"]], embedder)
    assert per[0][1] == 1.0 and 0.5 <= per[0][0] <= 1.0
