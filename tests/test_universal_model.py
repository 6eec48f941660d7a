"""002 §3.2-3.3: label voting, medians, Top-N / within-k, the Random Forest baseline and the
evaluation command on real CLINC150 queries (fixture) and the demo generator's questions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp.core.io import atomic_write_jsonl
from feedback_nlp.core.records import Question, Transcript, Turn
from feedback_nlp.universal_model import updates
from feedback_nlp.universal_model.baselines import RandomForestBaseline
from feedback_nlp.universal_model.metrics import metric_block, top_n_accuracy, within_k
from feedback_nlp.universal_model.predict import UniversalModel, median, ranked_labels, vote
from feedback_nlp.universal_model.question_repository import extract_questions, split_questions, subsample
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.retrieval import RetrievalSettings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"
CONFIG = str(ROOT / "configs/experiment/universal_model_demo.yaml")


def test_vote_is_the_mode_with_the_full_distribution():
    dist = vote(["a", "b", "b", "c", "b", "a"])
    assert list(dist) == ["b", "a", "c"]
    assert dist == pytest.approx({"b": 0.5, "a": 1 / 3, "c": 1 / 6})


def test_vote_ties_go_to_the_better_ranked_neighbour_and_none_is_ignored():
    assert list(vote(["x", "y", "y", "x", None])) == ["x", "y"]


def test_similarity_weighted_vote():
    dist = vote(["a", "b", "b"], weights=[5.0, 1.0, 1.5])
    assert list(dist) == ["a", "b"] and dist["a"] == pytest.approx(5 / 7.5)


def test_ranked_labels_backfill_with_the_prior():
    assert ranked_labels({"b": 0.6, "a": 0.4}, ["a", "c", "b", "d"]) == ["b", "a", "c", "d"]


def test_median_plain_and_weighted():
    assert median([3.0, 1.0, 2.0, None]) == 2.0
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert median([1.0, 2.0, 3.0], weights=[1.0, 1.0, 5.0]) == 3.0  # 5 of 7 weight on 3
    assert median([None, None]) is None


def test_top_n_and_within_k_by_hand():
    ranked = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"], ["a"]]
    truth = ["a", "a", "a", None]
    assert top_n_accuracy(ranked, truth, (1, 2, 3)) == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})
    assert within_k([10.0, 14.0, None, 3.0], [12.0, 8.0, 5.0, None], (3, 5, 7)) == pytest.approx(
        {3: 1 / 3, 5: 1 / 3, 7: 2 / 3}
    )
    block = metric_block("test", ranked, truth, [1.0], [2.0], ns=(1,), ks=(3,))
    assert block == pytest.approx({"test/top1": 1 / 3, "test/within_3": 1.0})


def _questions() -> list[Question]:
    return [
        Question(f"q{i}", text, {"product": p, "handle_time": h})
        for i, (text, p, h) in enumerate(
            [
                ("where is my package", "delivery", 5.0),
                ("my package is late", "delivery", 7.0),
                ("package never arrived", "delivery", 6.0),
                ("refund for my package", "refund", 12.0),
                ("i want a refund", "refund", 10.0),
                ("refund not received", "refund", 11.0),
            ]
        )
    ]


def _bm25_repository(root, questions, categorical, numeric, k, backend="tantivy") -> Repository:
    updates.export(
        root,
        questions,
        RetrievalSettings(method="bm25", backend=backend, k=k),
        categorical,
        numeric,
        {"weighting": "count", "backfill_prior": True},
        None,
    )
    return Repository.open(root)


def test_universal_model_mode_median_and_incremental_add(tmp_path):
    repo = _bm25_repository(tmp_path / "r", _questions(), ["product"], ["handle_time"], 3)
    um = UniversalModel(repo, ["product"], ["handle_time"], k=3)
    [row] = um.predict(["i want my refund, refund not received"])
    neigh = [q for q in _questions() if q.id in row["neighbors"]]
    labels = [q.labels["product"] for q in neigh]
    assert row["product"]["prediction"] == max(set(labels), key=labels.count) == "refund"
    assert row["handle_time"]["prediction"] == float(np.median([q.labels["handle_time"] for q in neigh]))
    assert row["product"]["ranked"] == ["refund", "delivery"]
    # 002 §3.2: a new label value is predicted as soon as its questions are added
    new = tmp_path / "new.jsonl"
    atomic_write_jsonl(
        new,
        [
            {"id": f"n{i}", "question": f"my kindle screen is frozen {i}", "product": "devices", "handle_time": 20.0}
            for i in range(3)
        ],
    )
    updates.add(tmp_path / "r", new)
    um = UniversalModel(Repository.open(tmp_path / "r"), ["product"], ["handle_time"], k=3)
    [row] = um.predict(["kindle screen frozen"])
    assert row["product"]["prediction"] == "devices" and row["handle_time"]["prediction"] == 20.0


@pytest.mark.parametrize("backend", ["tantivy", "reference"])
def test_chunked_querying_gives_the_same_predictions(monkeypatch, tmp_path, backend):
    """Querying runs in chunks (for the progress bar): the chunk size must not matter."""
    import feedback_nlp.universal_model.predict as um_mod

    repo, queries = _clinc()
    texts = [q.question for q in queries[:40]]
    um = UniversalModel(_bm25_repository(tmp_path / "r", repo, ["intent"], [], 20, backend), ["intent"], [], k=20)
    whole = um.predict(texts, progress=True)
    monkeypatch.setattr(um_mod, "QUERY_CHUNK", 3)
    chunked = um.predict(texts, progress=True)
    assert [r["neighbors"] for r in chunked] == [r["neighbors"] for r in whole]
    assert [r["intent"]["ranked"] for r in chunked] == [r["intent"]["ranked"] for r in whole]


def test_universal_model_rejects_bad_settings():
    with pytest.raises(ValueError, match="weighting"):
        UniversalModel(None, weighting="mean")
    with pytest.raises(ValueError, match="k must be"):
        UniversalModel(None, k=0)
    with pytest.raises(ValueError, match="retrieval.method"):
        RetrievalSettings(method="bm42")


def _clinc():
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]
    qs = [Question(r["id"], r["question"], {"intent": r["intent"], "domain": r["domain"]}) for r in rows]
    return [q for q, r in zip(qs, rows) if r["split"] == "train"], [q for q, r in zip(qs, rows) if r["split"] == "test"]


def test_random_forest_ranks_every_class():
    repo, queries = _clinc()
    rf = RandomForestBaseline(n_estimators=20).fit(
        [q.question for q in repo], {"intent": [q.labels["intent"] for q in repo]}, {}
    )
    ranked = rf.predict([q.question for q in queries])["intent"]
    assert all(len(r) == 20 for r in ranked)
    acc = top_n_accuracy(ranked, [q.labels["intent"] for q in queries], (1, 5))
    assert acc[1] > 0.5 and acc[5] >= acc[1]  # chance is 0.05


def test_split_and_subsample_are_seeded_and_nested():
    repo, _ = _clinc()
    a, b = split_questions(repo, 0.25, seed=0)
    assert len(a) + len(b) == len(repo) and 0.1 < len(b) / len(repo) < 0.4
    assert split_questions(repo, 0.25, seed=0) == (a, b)
    small, big = subsample(repo, 50, 0), subsample(repo, 100, 0)
    assert len(small) == 50 and {q.id for q in small} <= {q.id for q in big}


def test_extract_questions_keeps_the_rule_sentence_with_labels():
    class FakePredictor:
        def predict(self, records, progress=False):
            return [{"main_question": {"rule1": "Hello?", "rule2": f"Where is {t.id}?"}} for t in records]

    ts = [Transcript(f"t{i}", [Turn("customer", "x")], "delivery", 4.0 + i) for i in range(2)]
    qs = extract_questions(ts, FakePredictor(), "rule2", "product", progress=False)
    assert [(q.id, q.question, q.labels) for q in qs] == [
        ("q-t0", "Where is t0?", {"product": "delivery", "handle_time": 4.0}),
        ("q-t1", "Where is t1?", {"product": "delivery", "handle_time": 5.0}),
    ]


@pytest.fixture
def clinc_files(tmp_path):
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]
    repo = atomic_write_jsonl(tmp_path / "repo.jsonl", [r for r in rows if r["split"] == "train"])
    queries = atomic_write_jsonl(tmp_path / "queries.jsonl", [r for r in rows if r["split"] == "test"])
    return repo, queries


def test_evaluate_command_on_real_queries(clinc_files, tmp_path):
    from feedback_nlp.cli.repo import main

    repo, queries = clinc_files
    metrics = main(
        [
            "evaluate",
            "--config",
            CONFIG,
            f"repository.path={repo}",
            f"queries.path={queries}",
            "labels.categorical=[intent, domain]",
            "labels.numeric=[]",
            f"output_dir={tmp_path / 'run'}",
            "baseline.n_estimators=20",
        ]
    )
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    for key in ("test/top1", "test/top5", "test/top10", "test/top15", "rf/top1", "test/domain/top1"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["test/top1"] > 0.5 and metrics["test/top15"] >= metrics["test/top5"] >= metrics["test/top1"]
    assert metrics["repository/size"] == 300 and metrics["test/n_queries"] == 100
    preds = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 100 and preds[0]["intent"]["predicted"] is not None
    png = tmp_path / "run" / "plots" / "topk_vs_k.png"  # 002 Table 1 as a picture
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_command_with_a_numeric_label_and_hold_out(tmp_path):
    from feedback_nlp.cli.repo import main
    from feedback_nlp.demo_data.seacat import generate_transcripts, questions_from_transcripts

    path = atomic_write_jsonl(
        tmp_path / "q.jsonl", questions_from_transcripts(generate_transcripts(random.Random(1), 200))
    )
    metrics = main(
        [
            "evaluate",
            "--config",
            CONFIG,
            f"repository.path={path}",
            f"output_dir={tmp_path / 'run'}",
            "baseline.n_estimators=10",
            "prediction.weighting=similarity",
            "retrieval.k=20",
            "retrieval.method=bm25",
        ]
    )
    for key in ("test/top1", "test/within_3", "test/within_5", "test/within_7", "rf/top1", "rf/within_5"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["test/within_3"] <= metrics["test/within_5"] <= metrics["test/within_7"]
    assert metrics["repository/size"] + metrics["test/n_queries"] == 200


def test_scaling_command_writes_markdown_and_json(clinc_files, tmp_path):
    from feedback_nlp.cli.repo import main

    repo, queries = clinc_files
    results = main(
        [
            "scaling",
            "--config",
            CONFIG,
            f"repository.path={repo}",
            f"queries.path={queries}",
            "labels.categorical=[intent]",
            "labels.numeric=[]",
            f"output_dir={tmp_path / 'scale'}",
            "baseline.n_estimators=10",
            "scaling.sizes=[100, 300]",
            "retrieval.method=bm25",
        ]
    )
    assert [(r["model"], r["size"]) for r in results] == [("RF", 100), ("RF", 300), ("UM", 100), ("UM", 300)]
    md = (tmp_path / "scale" / "scaling.md").read_text()
    assert "| UM(300) |" in md and "| RF(100) |" in md and "Top-15" in md
    assert json.loads((tmp_path / "scale" / "scaling.json").read_text())[0]["model"] == "RF"
    assert (tmp_path / "scale" / "plots" / "topk_vs_repository_size.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_label_or_unavailable_embedder_stops_before_writing(clinc_files, tmp_path, capsys):
    from feedback_nlp.cli.repo import main

    repo, queries = clinc_files
    with pytest.raises(SystemExit) as e:
        main(
            [
                "evaluate",
                "--config",
                CONFIG,
                f"repository.path={repo}",
                f"queries.path={queries}",
                f"output_dir={tmp_path / 'x'}",
                "labels.numeric=[]",
            ]
        )
    assert e.value.code == 2
    assert "label 'product'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # stopped before a run directory was made
    with pytest.raises(SystemExit) as e:  # an embedder that is not available offline: same
        main(
            [
                "evaluate",
                "--config",
                CONFIG,
                f"repository.path={repo}",
                f"queries.path={queries}",
                f"output_dir={tmp_path / 'y'}",
                "labels.categorical=[intent]",
                "labels.numeric=[]",
                "retrieval.method=dense",
                "retrieval.embedder=no-such-org/no-such-model",
            ]
        )
    assert e.value.code == 2 and "not in the local Hugging Face cache" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_reference_backend_predicts_like_tantivy(clinc_files, tmp_path):
    """Lucene BM25 (tantivy, k1 = 1.2) and the paper's BM25Okapi (k1 = 1.5) rank alike; on
    CLINC150 their K = 100 accuracies agree within 0.4 points (docs/question_repository.md)."""
    from feedback_nlp.cli.repo import main

    repo, queries = clinc_files
    common = [
        "--config",
        CONFIG,
        f"repository.path={repo}",
        f"queries.path={queries}",
        "retrieval.method=bm25",
        "retrieval.k=100",
        "prediction.weighting=count",
        "labels.categorical=[intent]",
        "labels.numeric=[]",
        "baseline.enabled=false",
    ]
    ours = main(["evaluate", *common, f"output_dir={tmp_path / 'a'}"])
    ref = main(["evaluate", *common, f"output_dir={tmp_path / 'b'}", "retrieval.backend=reference"])
    for key in ("test/top1", "test/top5", "test/top15"):
        assert ours[key] == pytest.approx(ref[key], abs=0.05)


def test_dense_and_hybrid_retrieval_with_the_packaged_minilm(tmp_path):
    """An exact repository question is its own nearest neighbour, cosine 1, by either method."""
    from feedback_nlp.universal_model.embedder import Embedder

    repo, _ = _clinc()
    emb = Embedder("packaged:all-MiniLM-L6-v2")
    for method in ("dense", "hybrid"):
        updates.export(
            tmp_path / method,
            repo[:120],
            RetrievalSettings(method=method, k=5),
            ["intent"],
            [],
            {"weighting": "similarity", "backfill_prior": True},
            emb,
        )
        r = Repository.open(tmp_path / method, embedder=emb)
        keys, scores = r.search([repo[7].question], 5)[0]
        assert r.question(keys[0]).id == repo[7].id and np.all(np.diff(scores) <= 1e-6)
        if method == "dense":
            assert scores[0] == pytest.approx(1.0, abs=1e-4)
        else:  # rank 1 in both lists: 2 / (rrf_k + 1)
            assert scores[0] == pytest.approx(2 / (r.settings.rrf_k + 1))


@pytest.mark.parametrize(
    "value,message", [("NaN", "finite number"), ('"slow"', "finite number"), ('[1, 2]', "finite number")]
)
def test_evaluate_rejects_bad_label_types_before_writing(tmp_path, capsys, value, message):
    """A numeric label of the wrong type stops the evaluate command with file:line:field and
    no run directory (it used to write a full run, or fail in the votes after config.yaml)."""
    from feedback_nlp.cli.repo import main

    lines = [
        json.dumps({"id": f"q{i}", "question": f"where is my parcel {i}", "product": "delivery", "handle_time": 5.0})
        for i in range(10)
    ]
    lines[3] = f'{{"id": "q3", "question": "refund", "product": "refund", "handle_time": {value}}}'
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as e:
        main(
            [
                "evaluate",
                "--config",
                CONFIG,
                f"repository.path={path}",
                f"output_dir={tmp_path / 'run'}",
                "retrieval.method=bm25",
            ]
        )
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{path}:4: field 'handle_time'" in err and message in err
    assert not (tmp_path / "run").exists()


def test_evaluate_command_logs_results_figures_and_files_to_wandb(clinc_files, wandb_home):
    """logger=wandb, offline: the W&B run holds what the run dir holds (read back from its log)."""
    import hashlib

    import wandb

    from feedback_nlp.cli.repo import main
    from tests.wandb_offline import read_run

    repo, queries = clinc_files
    out = wandb_home / "run"
    metrics = main(
        [
            "evaluate",
            "--config",
            CONFIG,
            "logger=wandb",
            f"repository.path={repo}",
            f"queries.path={queries}",
            "labels.categorical=[intent]",
            "labels.numeric=[]",
            f"output_dir={out}",
            "baseline.n_estimators=10",
            "retrieval.method=bm25",
        ]
    )
    wandb.teardown()
    run = read_run(out)
    saved = json.loads((out / "metrics.json").read_text())
    assert run.summary["test/top1"] == pytest.approx(saved["test/top1"]) == pytest.approx(metrics["test/top1"])
    assert run.summary["rf/top1"] == pytest.approx(saved["rf/top1"])
    assert run.config["retrieval"]["method"] == "bm25" and run.config["logger"]["wandb"]["enabled"] is True
    logged = {k: v for h in run.history for k, v in h.items()}
    png = (out / "plots" / "topk_vs_k.png").read_bytes()
    assert logged["universal_model/topk_vs_k"]["sha256"] == hashlib.sha256(png).hexdigest()
    assert logged["universal_model/table1"]["_type"] == "table-file"
    datasets = {a["name"]: a for a in run.artifacts if a["type"] == "dataset"}
    for path in (repo, queries):
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert datasets[Path(path).name]["metadata"]["sha256"] == sha
        assert f"sha256-{sha[:16]}" in datasets[Path(path).name]["aliases"]
    assert (out / "wandb_run_id.txt").read_text().strip() == run.dir.name.rsplit("-", 1)[-1]
