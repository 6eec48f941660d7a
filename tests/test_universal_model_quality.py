"""Issue 25 quality levers of the universal model: vote calibration (score ** p, label prior),
BM25-side text normalisation, and the quality preset, each against an independent expectation
(a vote computed by hand, the normalised text written out, a rebuild, the config's own values).
Embedders are tiny random BERTs built on the fly (tests/tiny_models.py): nothing downloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp.core.records import Question
from feedback_nlp.universal_model import updates
from feedback_nlp.universal_model.normalize import bm25_texts, drop_stopwords, expand_contractions
from feedback_nlp.universal_model.predict import UniversalModel, vote
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.repository_predictor import load_predictor
from feedback_nlp.universal_model.retrieval import RetrievalSettings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"


class StubRepository:
    """Fixed neighbours, labels and repository counts: the vote alone is under test."""

    def __init__(self, labels: list[str], scores: list[float], counts: dict[str, int]):
        self.labels, self.scores, self.counts = labels, np.asarray(scores), counts

    def search(self, queries, k=None):
        return [(np.arange(len(self.labels), dtype=np.int64), self.scores) for _ in queries]

    def question(self, key):
        return Question(f"q{key}", "", {"intent": self.labels[int(key)]})

    def prior(self, name):
        return sorted(self.counts, key=lambda lab: -self.counts[lab])

    def label_counts(self, name):
        return self.counts


def test_prior_power_divides_each_labels_mass_by_its_count_by_hand():
    # a: 0.5 + 0.3 = 0.8 over 4 questions -> 0.2; b: 0.4 over 1 question -> 0.4
    dist = vote(["a", "a", "b"], [0.5, 0.3, 0.4], {"a": 4, "b": 1}, prior_power=1.0)
    assert list(dist) == ["b", "a"] and dist == pytest.approx({"b": 0.4 / 0.6, "a": 0.2 / 0.6})
    # a ** 0.5: 0.8 / 2 = 0.4 ties b's 0.4 -> the better-ranked neighbour's label first
    assert list(vote(["a", "a", "b"], [0.5, 0.3, 0.4], {"a": 4, "b": 1}, prior_power=0.5)) == ["a", "b"]
    assert vote(["a", "a", "b"], [0.5, 0.3, 0.4], {"a": 4, "b": 1}) == pytest.approx({"a": 0.8 / 1.2, "b": 0.4 / 1.2})


def test_score_power_sharpens_the_vote_towards_the_nearest_neighbour():
    repo = StubRepository(["x", "y", "y"], [0.9, 0.5, 0.5], {"x": 1, "y": 1})
    plain = UniversalModel(repo, ["intent"], [], k=3, weighting="similarity")
    sharp = UniversalModel(repo, ["intent"], [], k=3, weighting="similarity", score_power=2.0)
    [p], [s] = plain.predict(["q"]), sharp.predict(["q"])
    assert p["intent"]["prediction"] == "y" and p["intent"]["distribution"]["y"] == pytest.approx(1.0 / 1.9)
    assert s["intent"]["prediction"] == "x" and s["intent"]["distribution"]["x"] == pytest.approx(0.81 / 1.31)


def test_prior_power_flips_an_unbalanced_neighbourhood_through_the_model():
    repo = StubRepository(["big", "big", "small"], [1.0, 1.0, 1.0], {"big": 10, "small": 2})
    [plain] = UniversalModel(repo, ["intent"], [], k=3, weighting="count").predict(["q"])
    [calibrated] = UniversalModel(repo, ["intent"], [], k=3, weighting="count", prior_power=1.0).predict(["q"])
    assert plain["intent"]["prediction"] == "big"
    # big: 2 / 10 = 0.2, small: 1 / 2 = 0.5
    assert calibrated["intent"]["distribution"] == pytest.approx({"small": 0.5 / 0.7, "big": 0.2 / 0.7})


@pytest.mark.parametrize("bad", [{"score_power": -1.0}, {"prior_power": float("nan")}, {"score_power": "2"}])
def test_bad_vote_settings_are_clear_errors(bad):
    with pytest.raises(ValueError, match="prediction."):
        UniversalModel(None, weighting="similarity", **bad)
    with pytest.raises(ValueError, match="retrieval.bm25_text"):
        RetrievalSettings(bm25_text="stemmed")


def test_contractions_and_stop_words_by_hand():
    assert expand_contractions("What's my bill? I can't pay, it isn't due and I'd wait") == (
        "what is my bill? i can not pay, it is not due and i would wait"
    )
    assert expand_contractions("my wife's card won't work") == "my wife's card will not work"
    # bm25s's English list (Lucene's): is, it, the, of, to, a are stop words; my, what are not
    assert drop_stopwords("Is it the bill of my car, to a what?") == "bill my car what"
    assert bm25_texts("contractions+stopwords", ["What's the time"]) == ["what time"]
    assert bm25_texts("plain", ["What's the time"]) == ["What's the time"]


def _questions(n: int | None = None) -> tuple[list[Question], list[Question]]:
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]
    qs = [(Question(r["id"], r["question"], {"intent": r["intent"]}), r["split"]) for r in rows]
    return [q for q, s in qs if s == "train"][:n], [q for q, s in qs if s == "test"]


@pytest.mark.parametrize("backend", ["tantivy", "reference"])
def test_bm25_text_mode_is_what_the_index_holds_and_what_queries_use(tmp_path, backend):
    train, _ = _questions()
    for mode in ("plain", "stopwords"):
        settings = RetrievalSettings(method="bm25", backend=backend, k=5, bm25_text=mode)
        updates.export(tmp_path / mode, train, settings, ["intent"], [], {"weighting": "count"}, None)
    plain, stop = Repository.open(tmp_path / "plain"), Repository.open(tmp_path / "stopwords")
    # a query made of stop words only: plain BM25 finds questions, the normalised index has no such term
    [(keys, _)] = plain.search(["is it the"])
    assert len(keys) == 5
    [(keys, _)] = stop.search(["is it the"])
    assert len(keys) == 0
    # with content words the normalised index answers; every neighbour shares a content term
    [(keys, _)] = stop.search(["what is the weather like"])
    assert len(keys) == 5
    assert all({"what", "weather", "like"} & set(drop_stopwords(stop.question(k).question).split()) for k in keys)


def _jsonl(path: Path, questions) -> Path:
    path.write_text("".join(json.dumps({"id": q.id, "question": q.question, **q.labels}) + "\n" for q in questions))
    return path


def test_quality_settings_flow_from_the_manifest_and_updates_equal_a_rebuild(tmp_path):
    """export -> load_predictor uses the manifest's bm25_text, score_power and prior_power; after
    add + add + delete (which unbalances the label counts) the predictions equal those of a
    repository exported from the resulting questions, and every distribution equals the vote
    recomputed by hand from the returned neighbours, their scores and the repository counts."""
    from feedback_nlp.universal_model.embedder import Embedder
    from tests.tiny_models import tiny_bert

    train, test = _questions()
    embedder = Embedder(tiny_bert(tmp_path / "tiny", [q.question for q in train]))
    settings = RetrievalSettings(method="hybrid", k=10, depth=20, bm25_text="contractions+stopwords")
    prediction = {"weighting": "similarity", "backfill_prior": True, "score_power": 2.0, "prior_power": 1.0}
    root = tmp_path / "repo"
    updates.export(root, train[:120], settings, ["intent"], [], prediction, embedder)
    updates.add(root, _jsonl(tmp_path / "a.jsonl", train[120:200]), embedder=embedder)
    updates.add(root, _jsonl(tmp_path / "b.jsonl", train[200:]), embedder=embedder)
    # after adds alone (delete below rewrites the whole BM25 index, which would hide an add-path bug)
    updates.export(tmp_path / "all", train, settings, ["intent"], [], prediction, embedder)
    after_adds, all_at_once = load_predictor(root).predict(test), load_predictor(tmp_path / "all").predict(test)
    assert [[n["id"] for n in r["neighbors"]] for r in after_adds] == [
        [n["id"] for n in r["neighbors"]] for r in all_at_once
    ]
    gone = [q.id for q in train[:60:2]]  # half the questions of the first intents: unbalanced counts
    updates.delete(root, gone)
    kept = [q for q in train if q.id not in set(gone)]
    updates.export(tmp_path / "rebuild", kept, settings, ["intent"], [], prediction, embedder)
    grown, rebuilt = load_predictor(root), load_predictor(tmp_path / "rebuild")
    model, _ = grown._refresh()
    assert (model.score_power, model.prior_power) == (2.0, 1.0)
    assert model.repository.settings.bm25_text == "contractions+stopwords"
    a, b = grown.predict(test), rebuilt.predict(test)
    assert [r["intent"]["prediction"] for r in a] == [r["intent"]["prediction"] for r in b]
    assert [[n["id"] for n in r["neighbors"]] for r in a] == [[n["id"] for n in r["neighbors"]] for r in b]
    counts: dict[str, int] = {}
    for q in kept:
        counts[q.labels["intent"]] = counts.get(q.labels["intent"], 0) + 1
    assert len(set(counts.values())) > 1  # the prior really is unbalanced
    label_of = {q.id: q.labels["intent"] for q in kept}
    for row in a:
        mass: dict[str, float] = {}
        for n in row["neighbors"]:
            lab = label_of[n["id"]]
            mass[lab] = mass.get(lab, 0.0) + max(n["score"], 0.0) ** 2
        mass = {lab: m / counts[lab] for lab, m in mass.items()}
        total = sum(mass.values())
        assert row["intent"]["distribution"] == pytest.approx({lab: m / total for lab, m in mass.items()}, rel=1e-6)
        assert row["intent"]["prediction"] == max(mass, key=lambda lab: mass[lab])


def test_quality_preset_config_is_the_documented_one():
    """The preset the docs recommend: the mpnet folder in the hybrid, valid settings throughout."""
    from feedback_nlp.cli.repo_evaluation import retrieval_settings
    from feedback_nlp.core.config import load_config

    cfg = load_config(str(ROOT / "configs/experiment/universal_model_clinc150_quality.yaml"))
    assert cfg.retrieval.embedder == "models/all-mpnet-base-v2"
    settings = retrieval_settings(cfg)
    assert settings.method == "hybrid" and settings.needs_embedder
    UniversalModel(
        None,
        weighting=cfg.prediction.weighting,
        score_power=cfg.prediction.score_power,
        prior_power=cfg.prediction.prior_power,
    )
    docs = (ROOT / "docs/question_repository.md").read_text(encoding="utf-8")
    assert "universal_model_clinc150_quality.yaml" in docs
