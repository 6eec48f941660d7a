"""Build a universal model from config and evaluate it as in 002 §3.3 / Table 1.

Why one config-driven function: the same command must run on the demo data, on CLINC150 and
on held-out customer data by overriding only paths and label names (`repository.path=...
labels.categorical=[intent]`). The repository comes from question JSONL, or from transcripts
through a trained SeaCat (002 §3.1); queries from a question JSONL, or a seeded hold-out.
"""

from __future__ import annotations

import time
from typing import Any

from omegaconf import DictConfig

from feedback_nlp.core.config import ConfigError, to_dict
from feedback_nlp.core.records import Question, Transcript, load_records
from feedback_nlp.datamodules.splits import hash_unit
from feedback_nlp.universal_model.baselines import RandomForestBaseline
from feedback_nlp.universal_model.metrics import metric_block
from feedback_nlp.universal_model.predict import UniversalModel, _number
from feedback_nlp.universal_model.question_repository import (
    extract_questions,
    load_questions,
    split_questions,
    transcript_labels,
)
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.retrieval import RetrievalSettings


def _opts(section: Any) -> dict[str, Any]:
    return to_dict(section) if isinstance(section, DictConfig) else dict(section or {})


def seacat_predictor(repo_cfg: Any) -> Any:
    from feedback_nlp.lightning_modules.seacat_serving import (
        SeaCatPredictor,
        load_predictor_from_checkpoint,
    )

    if repo_cfg.get("seacat_export"):
        return SeaCatPredictor.load(repo_cfg.seacat_export)
    if repo_cfg.get("seacat_checkpoint"):
        return load_predictor_from_checkpoint(repo_cfg.seacat_checkpoint)
    raise ConfigError(
        "repository.transcripts needs repository.seacat_export or repository.seacat_checkpoint "
        "(a trained SeaCat tags the main questions, 002 §3.1)"
    )


def load_repository_and_queries(cfg: Any) -> tuple[list[Question], list[Question]]:
    """(repository questions, query questions) as the config says."""
    r, q = cfg.repository, cfg.queries
    queries = load_questions(q.path, _opts(q.get("field_map"))) if q.get("path") else None
    if r.get("transcripts"):
        transcripts: list[Transcript] = load_records(
            r.transcripts, "transcript", _opts(r.get("transcript_field_map")) or None
        )
        held: list[Transcript] = []
        if queries is None:  # hold out transcripts; their annotated main question is the query
            held = [t for t in transcripts if hash_unit(t.id, cfg.seed) < q.test_fraction]
            transcripts = [t for t in transcripts if hash_unit(t.id, cfg.seed) >= q.test_fraction]
        predictor = seacat_predictor(r)
        repo = extract_questions(transcripts, predictor, r.rule, r.label_field, progress=True)
        if held:
            missing = [t for t in held if not t.main_question]
            tagged = {x.id: x.question for x in extract_questions(missing, predictor, r.rule, r.label_field, False)}
            queries = [
                Question(
                    f"q-{t.id}", t.main_question or tagged.get(f"q-{t.id}", ""), transcript_labels(t, r.label_field)
                )
                for t in held
            ]
            queries = [x for x in queries if x.question]
        return repo, queries or []
    repo = load_questions(r.path, _opts(r.get("field_map")))
    if queries is None:
        repo, queries = split_questions(repo, q.test_fraction, cfg.seed)
    return repo, queries


def load_all_questions(cfg: Any) -> tuple[list[Question], str]:
    """Every repository question the config names (no query hold-out): what `export` stores."""
    r = cfg.repository
    if r.get("transcripts"):
        transcripts = load_records(r.transcripts, "transcript", _opts(r.get("transcript_field_map")) or None)
        return extract_questions(transcripts, seacat_predictor(r), r.rule, r.label_field, progress=True), r.transcripts
    return load_questions(r.path, _opts(r.get("field_map"))), r.path


def check_labels(cfg: Any, repo: list[Question], queries: list[Question] | None = None) -> None:
    present = {k for x in repo for k in x.labels}
    for name in [*cfg.labels.categorical, *cfg.labels.numeric]:
        if name not in present:
            raise ConfigError(
                f"label '{name}' is in no repository question; fields found: {sorted(present)} "
                "(set labels.categorical / labels.numeric, or map fields with repository.field_map)"
            )
    # label types against the schema (NaN, "slow", lists), file:line:field, before any run dir exists
    from feedback_nlp.universal_model import label_schema

    cat, num = list(cfg.labels.categorical), list(cfg.labels.numeric)
    label_schema.check_labels(repo, cat, num, cfg.repository.get("path") or "<repository>")
    if queries:
        label_schema.check_labels(
            queries, cat, num, cfg.queries.get("path") or cfg.repository.get("path") or "<queries>"
        )


def retrieval_settings(cfg: Any) -> RetrievalSettings:
    """The config's `retrieval` section as the settings a repository manifest stores."""
    try:
        return RetrievalSettings.from_mapping(_opts(cfg.retrieval))
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def embedder_name(cfg: Any) -> str:
    r = cfg.retrieval
    name = r.get("embedder") or r.get("dense_model")
    if not name:
        raise ConfigError("retrieval.embedder must name a sentence-transformers model for dense/hybrid retrieval")
    return str(name)


def export_repository(cfg: Any, questions: list[Question], root: Any, source: Any = "<questions>") -> dict:
    """Write the repository folder the config describes (export command, evaluation)."""
    from feedback_nlp.universal_model.updates import export

    settings = retrieval_settings(cfg)
    embedder = None
    if settings.needs_embedder or cfg.retrieval.get("store_embeddings", False):
        from feedback_nlp.universal_model.embedder import Embedder

        embedder = Embedder(embedder_name(cfg), cfg.retrieval.get("batch_size", 64))
    p = cfg.prediction
    prediction = {
        "weighting": p.weighting,
        "backfill_prior": p.backfill_prior,
        "score_power": float(p.get("score_power", 1.0)),
        "prior_power": float(p.get("prior_power", 0.0)),
    }
    return export(
        root,
        questions,
        settings,
        list(cfg.labels.categorical),
        list(cfg.labels.numeric),
        prediction,
        embedder,
        source,
        cfg.retrieval.get("opensearch_index"),
    )


def build_universal_model(cfg: Any, repo: list[Question], root: Any) -> UniversalModel:
    """002 §3.2: the universal model is its repository -- built here exactly as `export` does."""
    export_repository(cfg, repo, root)
    repository = Repository.open(root)
    return UniversalModel.from_settings(
        repository,
        list(cfg.labels.categorical),
        list(cfg.labels.numeric),
        repository.settings.k,
        repository.manifest["prediction"],
    )


def _prefixed(prefix: str, name: str, primary: bool) -> str:
    return prefix if primary else f"{prefix}/{name}"


def score(
    cfg: Any,
    prefix: str,
    queries: list[Question],
    cat_pred: dict[str, list[list[Any]]],
    num_pred: dict[str, list[float | None]],
) -> dict[str, float]:
    """Top-N for each categorical label, within-k for each numeric one; the first of each
    kind gets the plain names (`test/top1`, `test/within_5`)."""
    out: dict[str, float] = {}
    ns, ks = list(cfg.metrics.top_n), list(cfg.metrics.within)
    for i, name in enumerate(cfg.labels.categorical):
        out.update(
            metric_block(
                _prefixed(prefix, name, i == 0),
                ranked=cat_pred[name],
                truth_cat=[x.labels.get(name) for x in queries],
                ns=ns,
            )
        )
    for i, name in enumerate(cfg.labels.numeric):
        out.update(
            metric_block(
                _prefixed(prefix, name, i == 0),
                pred_num=num_pred[name],
                truth_num=[_number(x.labels.get(name)) for x in queries],
                ks=ks,
            )
        )
    return {k: v for k, v in out.items() if v == v}  # drop NaN (no truth for that label)


def evaluate_um(
    cfg: Any, repo: list[Question], queries: list[Question], prefix: str = "test"
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="um-repository-") as tmp:
        t0 = time.perf_counter()
        model = build_universal_model(cfg, repo, tmp)
        build_s = time.perf_counter() - t0
        return _evaluate(cfg, model, repo, queries, prefix, build_s)


def _evaluate(
    cfg: Any, model: UniversalModel, repo: list[Question], queries: list[Question], prefix: str, build_s: float
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    t0 = time.perf_counter()
    rows = model.predict([x.question for x in queries], progress=True)
    query_s = time.perf_counter() - t0
    cat = {n: [r[n]["ranked"] for r in rows] for n in cfg.labels.categorical}
    num = {n: [r[n]["prediction"] for r in rows] for n in cfg.labels.numeric}
    metrics = score(cfg, prefix, queries, cat, num)
    metrics.update(
        {
            f"{prefix}/n_queries": float(len(queries)),
            "repository/size": float(len(repo)),
            "repository/build_seconds": build_s,
            f"{prefix}/queries_per_second": len(queries) / query_s if query_s > 0 else 0.0,
        }
    )
    return metrics, [_prediction_row(cfg, x, r, model) for x, r in zip(queries, rows)]


def _prediction_row(cfg: Any, query: Question, row: dict[str, Any], model: UniversalModel) -> dict[str, Any]:
    """What predictions.jsonl keeps per query: truth, prediction, top labels, top-5 neighbours."""
    top = zip(row["neighbors"][:5], row["neighbor_keys"], row["scores"])
    out: dict[str, Any] = {
        "id": query.id,
        "question": query.question,
        "neighbors": [
            {"id": i, "question": model.repository.question(j).question, "score": round(s, 4)} for i, j, s in top
        ],
    }
    for name in cfg.labels.categorical:
        dist = row[name]["distribution"]
        out[name] = {
            "true": query.labels.get(name),
            "predicted": row[name]["prediction"],
            "distribution": {k: round(v, 4) for k, v in list(dist.items())[:10]},
        }
    for name in cfg.labels.numeric:
        out[name] = {"true": query.labels.get(name), "predicted": row[name]["prediction"]}
    return out


def evaluate_rf(cfg: Any, repo: list[Question], queries: list[Question], prefix: str = "rf") -> dict[str, float]:
    b = cfg.baseline
    rf = RandomForestBaseline(b.n_estimators, b.get("max_features"), b.get("min_df", 1), cfg.seed, b.get("n_jobs", 1))
    rf.fit(
        [x.question for x in repo],
        {n: [x.labels.get(n) for x in repo] for n in cfg.labels.categorical},
        {n: [_number(x.labels.get(n)) for x in repo] for n in cfg.labels.numeric},
    )
    pred = rf.predict([x.question for x in queries])
    return score(
        cfg,
        prefix,
        queries,
        {n: pred[n] for n in cfg.labels.categorical},
        {n: pred.get(n, [None] * len(queries)) for n in cfg.labels.numeric},
    )
