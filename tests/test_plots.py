"""The papers' figures: the numbers each plot draws, checked by hand and against scikit-learn,
and the PNGs the callback writes (a fake trainer stands in where only logged metrics are read)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from feedback_nlp.callbacks.plots import PaperPlots, product_safety, seacat
from feedback_nlp.callbacks.plots import multilevel_issues as multilevel
from feedback_nlp.callbacks.plots import universal_model as universal

PNG = b"\x89PNG\r\n\x1a\n"


def test_pr_points_match_hand_counts_and_ignore_unlabeled():
    probs = [0.9, 0.8, 0.7, 0.6, 0.95]
    labels = [1, 0, 1, 0, -1]  # the last is unlabeled traffic: not part of the curve
    prec, rec, ts = product_safety.pr_points(probs, labels)
    # t=0.6: 4 predicted, 2 tp -> P .5 R 1; t=0.7: 3/2 -> .667, 1; t=0.8: 2/1 -> .5, .5; t=0.9: 1/1 -> 1, .5
    np.testing.assert_allclose(ts, [0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(prec, [0.5, 2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(rec, [1.0, 1.0, 0.5, 0.5])


def test_confusion_and_threshold_sweep_by_hand():
    probs, labels = [0.9, 0.8, 0.7, 0.6, 0.2], [1, 0, 1, 0, 1]
    np.testing.assert_array_equal(product_safety.confusion(probs, labels, 0.65), [[1, 1], [1, 2]])  # TN FP / FN TP
    sweep = product_safety.threshold_sweep(probs, labels, traffic_probs=[0.1, 0.5, 0.75], grid=[0.0, 0.5, 0.85, 1.0])
    np.testing.assert_allclose(sweep["recall"], [1.0, 2 / 3, 1 / 3, 0.0])
    np.testing.assert_array_equal(sweep["volume_model"], [3, 2, 0, 0])


def test_product_safety_figures_mark_the_operating_point():
    rng = np.random.default_rng(0)
    n = 40
    labels = (rng.random(n) < 0.4).astype(int)
    probs = np.clip(labels * 0.5 + rng.random(n) * 0.5, 0, 1)
    test = {
        "probs": probs,
        "labels": labels,
        "in_test": np.r_[np.ones(30), np.zeros(10)],
        "in_traffic": np.r_[np.zeros(30), np.ones(10)],
        "is_original": np.ones(n),
        "threshold": 0.55,
        "rows": {"de": {"precision": 0.5, "recall": 1.0, "n": 4, "positives": 2, "volume_model": 1, "traffic": 3}},
    }
    figs = product_safety.figures((probs[:30], labels[:30], 0.55), test, ["no", "ps"], 0.95)
    assert set(figs) == {"pr_curve", "confusion_matrix", "recall_volume_vs_threshold", "per_language"}
    ax = figs["pr_curve"].axes[0]
    marker = next(line for line in ax.get_lines() if line.get_label().startswith("test @"))
    from feedback_nlp.metrics.product_safety import precision_recall_at

    want = precision_recall_at(probs[:30], labels[:30], 0.55)
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx((want["recall"], want["precision"]))
    sweep_ax = figs["recall_volume_vs_threshold"].axes[0]
    assert any(line.get_label() == "chosen 0.550" for line in sweep_ax.get_lines())
    import matplotlib.pyplot as plt

    plt.close("all")


EXAMPLES = [  # two transcripts; t1's predicted question is sentence 2, annotated 1; t2's both are 0
    {"transcript": "t1", "sentence": 0, "weight": 0.1, "rule2": False, "annotated": False},
    {"transcript": "t1", "sentence": 1, "weight": 0.3, "rule2": False, "annotated": True},
    {"transcript": "t1", "sentence": 2, "weight": 0.6, "rule2": True, "annotated": False},
    {"transcript": "t2", "sentence": 0, "weight": 1.0, "rule2": True, "annotated": True},
]


def test_seacat_heatmap_data_places_weights_and_marks():
    ids, grid, predicted, annotated = seacat.heatmap_data(EXAMPLES)
    assert ids == ["t1", "t2"] and predicted == [2, 0] and annotated == [[1], [0]]
    np.testing.assert_allclose(grid[0], [0.1, 0.3, 0.6])
    assert grid[1, 0] == 1.0 and np.isnan(grid[1, 1:]).all()  # shorter transcript: padding, not zero weight


def fake_trainer(metrics, global_zero=True):
    return SimpleNamespace(
        is_global_zero=global_zero,
        loggers=[],
        global_step=3,
        sanity_checking=False,
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
        checkpoint_callback=None,
    )


def test_callback_writes_task_pngs(tmp_path):
    cb = PaperPlots(str(tmp_path))
    module = SimpleNamespace(task="seacat", example_rows=lambda: EXAMPLES)
    cb.on_test_end(fake_trainer({}), module)
    metrics = {"test/coarse/rouge1": 0.5, "test/coarse/simcse_f1": 0.6, "test/granular/rouge1": 0.3}
    cb.on_test_end(fake_trainer(metrics), SimpleNamespace(task="multilevel_issues"))
    assert (tmp_path / "plots" / "attention_heatmap.png").read_bytes()[:8] == PNG
    assert (tmp_path / "plots" / "level_metrics.png").read_bytes()[:8] == PNG
    assert multilevel.level_table(metrics) == {"coarse": {"rouge1": 0.5, "simcse_f1": 0.6}, "granular": {"rouge1": 0.3}}
    cb.on_test_end(fake_trainer(metrics, global_zero=False), SimpleNamespace(task="multilevel_issues"))  # rank > 0
    assert len(cb.written) == 2


def test_universal_model_plots_from_run_files(tmp_path, capsys):
    metrics = {
        "test/top1": 0.4,
        "test/top5": 0.7,
        "test/top10": 0.8,
        "rf/top1": 0.3,
        "rf/top5": 0.5,
        "test/within_5": 0.9,
    }
    assert universal.topk_series(metrics) == {"test": [(1, 0.4), (5, 0.7), (10, 0.8)], "rf": [(1, 0.3), (5, 0.5)]}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "scaling.json").write_text(
        json.dumps(
            [
                {"model": "UM", "size": 100, "metrics": {"test/top1": 0.3, "test/top5": 0.5}},
                {"model": "UM", "size": 400, "metrics": {"test/top1": 0.4, "test/top5": 0.7}},
                {"model": "RF", "size": 100, "metrics": {"rf/top1": 0.2, "rf/top5": 0.4}},
            ]
        )
    )
    assert universal.main([str(tmp_path)]) == 0
    for name in ("topk_vs_k", "topk_vs_repository_size"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == PNG
    fig = universal.scaling_figure(json.loads((tmp_path / "scaling.json").read_text()))
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in fig.axes[0].get_lines()}
    assert lines["UM Top-1"] == ([100, 400], [30.0, 40.0]) and lines["RF Top-5"] == ([100], [40.0])
    assert universal.main([str(tmp_path / "nope")]) == 2


def test_label_efficiency_curve_and_merge(tmp_path):
    from feedback_nlp.scripts.label_efficiency import earlier_issues

    results = {
        "L-Coarse - damaged item": {
            "1": {"relative_f1": 100.0},
            "0.5": {"relative_f1": 80.0},
            "0": {"relative_f1": None},
        }
    }
    fig = multilevel.label_efficiency_figure(results)
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [50.0, 100.0] and list(line.get_ydata()) == [80.0, 100.0]
    path = tmp_path / "label_efficiency.json"
    path.write_text(json.dumps({"fractions": [1.0, 0.5], "config": "c.yaml", "overrides": [], "issues": results}))
    other = {"L-Granular - arrived broken": {}}
    assert earlier_issues(path, [1.0, 0.5], "c.yaml", [], other) == results  # another issue's row is kept
    assert earlier_issues(path, [1.0, 0.25], "c.yaml", [], other) == {}  # another study: not mixed in


def test_dev_curve_comes_from_the_validation_the_tested_checkpoint_was_chosen_at(tmp_path):
    """Three validations with val/loss 0.5, 0.3, 0.4: the best checkpoint is the second, so the dev
    PR curve must use the second validation's scores and threshold; only best + latest are kept."""
    cb = PaperPlots(str(tmp_path))
    ckpt = SimpleNamespace(monitor="val/loss", mode="min", best_model_score=torch.tensor(0.3))
    for i, (loss, threshold) in enumerate([(0.5, 0.2), (0.3, 0.4), (0.4, 0.6)]):
        module = SimpleNamespace(
            task="product_safety",
            threshold=threshold,
            validation_scores=lambda i=i: (np.full(3, i / 10), np.array([1, 0, 1])),
        )
        trainer = SimpleNamespace(
            sanity_checking=False, checkpoint_callback=ckpt, callback_metrics={"val/loss": torch.tensor(loss)}
        )
        cb.on_validation_end(trainer, module)
    assert [d["threshold"] for d in cb._dev] == [0.4, 0.6]  # the best and the latest
    probs, labels, threshold = cb._dev_for(SimpleNamespace(checkpoint_callback=ckpt), 0.4)
    assert threshold == 0.4 and np.all(probs == 0.1)
