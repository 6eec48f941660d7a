"""Sentence & issue shuffling (000 §4.2): per sample, reproducible from (seed, epoch), train only."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from feedback_nlp.core.records import Feedback
from feedback_nlp.core.sentences import split_sentences
from feedback_nlp.datamodules.multilevel_issues import MultiTaskSamples
from feedback_nlp.datamodules.shuffling import shuffle_sentences, shuffled

ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "I ordered this lamp for my son. Unfortunately, the glass shattered in transit. The remote control "
    "was missing. Delivery was on time though. I will probably send it back."
)
ISSUES = ["glass shattered in transit", "remote control missing", "arrived broken", "feels cheap", "lid is missing"]


def test_same_seed_epoch_key_same_order_and_a_permutation():
    a = shuffled(ISSUES, 0, 3, "fb-1")
    assert a == shuffled(ISSUES, 0, 3, "fb-1")
    assert sorted(a) == sorted(ISSUES) and ISSUES == [
        "glass shattered in transit",
        "remote control missing",
        "arrived broken",
        "feels cheap",
        "lid is missing",
    ]


def test_epoch_seed_and_sample_each_change_the_order():
    orders = lambda **kw: {tuple(shuffled(ISSUES, **kw, key=f"fb-{i}")) for i in range(20)}  # noqa: E731
    base = [tuple(shuffled(ISSUES, 0, 0, f"fb-{i}")) for i in range(20)]
    assert len(set(base)) > 10  # different samples draw different orders
    assert sum(b != tuple(shuffled(ISSUES, 0, 1, f"fb-{i}")) for i, b in enumerate(base)) >= 15  # new epoch
    assert sum(b != tuple(shuffled(ISSUES, 1, 0, f"fb-{i}")) for i, b in enumerate(base)) >= 15  # new seed
    assert orders(seed=0, epoch=0) == set(base)


def test_order_is_the_same_in_another_process():
    """DataLoader workers and DDP ranks are other processes (with another hash seed)."""
    code = (
        f"from feedback_nlp.datamodules.shuffling import shuffled; print(shuffled({ISSUES!r}, 7, 2, 'fb-42', 'issues'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout.strip()
    assert out == str(shuffled(ISSUES, 7, 2, "fb-42", "issues"))


def test_sentence_shuffle_keeps_every_sentence():
    out = shuffle_sentences(TEXT, 0, 0, "fb-1")
    assert Counter(split_sentences(out)) == Counter(split_sentences(TEXT))
    outs = {shuffle_sentences(TEXT, 0, e, "fb-1") for e in range(10)}
    assert len(outs) > 5


def test_single_sentence_text_is_untouched():
    text = "  The lid was missing!  "
    assert shuffle_sentences(text, 0, 5, "x") == text


def _samples(**kw) -> MultiTaskSamples:
    recs = [
        Feedback(f"fb-{i}", TEXT, ["damaged item", "missing parts issue", "late delivery"], ISSUES, extra={})
        for i in range(4)
    ]
    return MultiTaskSamples(recs, {"coarse": "C: ", "granular": "G: "}, seed=0, **kw)


def test_training_samples_shuffle_per_epoch_and_eval_access_does_not():
    ds = _samples()
    coarse = [i for i, (task, _) in enumerate(ds.specs) if task == "granular"][0]
    e0, e0b, e1 = ds[(0, coarse)], ds[(0, coarse)], ds[(1, coarse)]
    assert e0 == e0b  # reproducible within an epoch
    assert (e0["source"], e0["target"]) != (e1["source"], e1["target"])
    assert sorted(e1["target"].split(", ")) == sorted(ISSUES)
    plain = ds[coarse]  # plain index: no epoch -> no shuffling (evaluation order)
    assert plain["source"] == "G: " + TEXT and plain["target"] == ", ".join(ISSUES)


def test_switch_off_for_the_table5_ablation():
    ds = _samples(shuffle_sentences=False, shuffle_issues=False)
    for epoch in range(3):
        for i in range(len(ds)):
            assert ds[(epoch, i)] == ds[i]
    only_issues = _samples(shuffle_sentences=False, shuffle_issues=True)
    k = next(i for i, (t, _) in enumerate(only_issues.specs) if t == "granular")
    assert only_issues[(1, k)]["source"] == "G: " + TEXT
