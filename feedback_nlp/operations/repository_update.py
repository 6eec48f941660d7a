"""The universal model's periodic update as one job (002: the repository "only requires periodic
updating"; 001 §5: a candidate is compared with production on identical data before it serves).

    new transcripts --SeaCat export--> main questions + labels --> added to the repository
    deletion list (GDPR) --> those questions removed (and new transcripts on it never added)
    repository before vs after --> `compare` on a frozen query set (sha256), optional rules
    --> committed only if every step (and every rule) passed

Why staged: `repo add` and `repo delete` are each atomic, but an update is several of them and
a compare; committing the add and then failing the delete (or the rules) would leave a half
update in production. So the job works on a staging copy inside the repository folder whose
generation folder is hard-linked (chunk files are never modified, so this costs no copy),
applies the add and the delete there with the ordinary update code, compares the staged
repository with the committed one, and only then moves the staged generation into the
repository and replaces manifest.json -- the repository's single commit point (one rename).
A failure or a kill before that rename leaves the repository exactly as it was (the staging
folder left by a kill is removed by the next update); the repository's write lock is held from
start to commit, so no other update can slip in between.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import UserError

STAGING_PREFIX = ".update-staging-"


class UpdateError(UserError, ValueError):
    pass


@dataclass
class Plan:
    """Everything the job needs, checked before any model loads (see `prepare`)."""

    root: Path
    transcripts: list[Any]  # core.records.Transcript, minus those on the deletion list
    skipped: int  # new transcripts left out because the deletion list names them
    seacat: Path
    rule: str
    label_field: str
    deletions: set[str]
    evalset: Any  # operations.compare.EvalSet: the frozen queries, minus deleted ids
    queries: Path
    rules: list[Any] = field(default_factory=list)
    rounds: int = 1000
    seed: int = 0
    confidence: float = 0.95
    batch_size: int = 32
    options: Any = None  # serving.runtime.RuntimeOptions of both models (SeaCat, repository)


def prepare(
    root: Path,
    transcripts: Path,
    seacat: Path,
    queries: Path,
    delete_ids: Path | None = None,
    expect_sha256: str | None = None,
    rule: str = "rule2",
    label_field: str = "product",
    rules: Sequence[str] = (),
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    batch_size: int = 32,
    device: str = "cpu",
) -> Plan:
    """Every check that needs no model: the repository, the transcripts (file:line:field), the
    SeaCat export (manifest and file hashes), the deletion list, the frozen query set and its
    sha256, the rules. Raises a UserError naming what is wrong; nothing is written."""
    from feedback_nlp.core.io import sha256_file
    from feedback_nlp.core.records import load_records
    from feedback_nlp.operations.compare import load_eval, read_deletions
    from feedback_nlp.operations.rules import parse_rule
    from feedback_nlp.serving.registry import preflight
    from feedback_nlp.serving.runtime import resolve
    from feedback_nlp.universal_model import repository_store as store

    manifest = store.read_manifest(root)
    if manifest["retrieval"].get("backend") == "opensearch":
        raise UpdateError(
            f"{root}: the opensearch backend keeps its index in the cluster, which a staged update cannot "
            "roll back; update it with `feedback-nlp repo add` and `repo delete`"
        )
    if rule not in ("rule1", "rule2"):
        raise UpdateError(f"--rule {rule!r}: expected rule1 or rule2 (002 §2.2)")
    if rounds < 0 or not 0 < confidence < 1 or batch_size < 1:
        raise UpdateError("need --rounds >= 0, 0 < --confidence < 1 and --batch-size >= 1")
    wanted = [*manifest["labels"]["categorical"], *manifest["labels"]["numeric"]]
    offered = {label_field, "handle_time"}
    if set(wanted) - offered:
        raise UpdateError(
            f"{root}: the repository's labels {wanted} need {sorted(set(wanted) - offered)}, but questions from "
            f"transcripts carry {label_field!r} (--label-field) and handle_time"
        )
    for name, path in (("--transcripts", transcripts), ("--queries", queries)):
        if not Path(path).is_file():
            raise UpdateError(f"{name} {path}: no such file")
    options = resolve(device, "fp32", "torch", batch_size)
    seacat_manifest = preflight(seacat, options)
    if seacat_manifest["task"] != "seacat":
        raise UpdateError(f"--seacat-export {seacat}: a {seacat_manifest['task']} export, not a SeaCat one")
    digest = sha256_file(queries)
    if expect_sha256 and expect_sha256.lower() != digest:
        raise UpdateError(f"--queries {queries}: sha256 {digest} differs from --expect-sha256 {expect_sha256}")
    deletions = read_deletions(delete_ids) if delete_ids is not None else set()
    new = load_records(transcripts, "transcript")  # DataValidationError: file:line:field
    kept = [t for t in new if not _deleted(t.id, deletions) and not _deleted(f"q-{t.id}", deletions)]
    stored = set(_stored_ids(root, manifest))
    taken = [t.id for t in kept if f"q-{t.id}" in stored]
    if taken:
        from feedback_nlp.core.errors import DataValidationError, Problem
        from feedback_nlp.universal_model.label_schema import line_numbers

        lines = line_numbers(transcripts)
        raise DataValidationError(
            [Problem(str(transcripts), lines.get(i, 0), "id", f"question 'q-{i}' is already in {root}") for i in taken]
        )
    evalset = load_eval(queries, "universal_model", deletions)
    return Plan(
        root=root,
        transcripts=kept,
        skipped=len(new) - len(kept),
        seacat=seacat,
        rule=rule,
        label_field=label_field,
        deletions=deletions,
        evalset=evalset,
        queries=queries,
        rules=[parse_rule(r) for r in rules],
        rounds=rounds,
        seed=seed,
        confidence=confidence,
        batch_size=batch_size,
        options=options,
    )


def _stored_ids(root: Path, manifest: dict[str, Any]) -> list[str]:
    """The ids of a committed repository (from its small per-chunk id files, hashes checked)."""
    from feedback_nlp.universal_model import chunks as ch
    from feedback_nlp.universal_model import repository_store as store

    store.verify(root, manifest, [c["ids"] for c in manifest["chunks"]])
    gen_dir = root / manifest["generation_dir"]
    return [i for c in manifest["chunks"] for i in ch.read_ids(gen_dir, c)[1]]


def _deleted(question_id: str, deletions: set[str]) -> bool:
    """A question goes when the list names it, or names the transcript it came from (`q-<id>`)."""
    return question_id in deletions or (question_id.startswith("q-") and question_id[2:] in deletions)


def main_questions(plan: Plan) -> list[Any]:
    """002 §3.1 with the SeaCat export: each transcript's main question (rule 1 or 2) and labels."""
    from feedback_nlp.core.records import Question
    from feedback_nlp.operations.compare import score
    from feedback_nlp.serving.registry import load_export
    from feedback_nlp.universal_model.question_repository import transcript_labels

    if not plan.transcripts:
        return []
    predictor, _ = load_export(plan.seacat, plan.options)
    rows = score(predictor, plan.transcripts, plan.batch_size)
    out = []
    for t, row in zip(plan.transcripts, rows):
        question = (row.get("main_question") or {}).get(plan.rule)
        if question:
            out.append(Question(f"q-{t.id}", question, transcript_labels(t, plan.label_field)))
    return out


def _stage(root: Path, manifest: dict[str, Any]) -> Path:
    """A staging repository inside `root`: the manifest and hard links to the committed generation."""
    for old in root.glob(STAGING_PREFIX + "*"):  # left by a killed update: never committed
        shutil.rmtree(old, ignore_errors=True)
    staging = root / f"{STAGING_PREFIX}{os.getpid()}"
    src = root / manifest["generation_dir"]
    for p in sorted(src.rglob("*")):
        dst = staging / manifest["generation_dir"] / p.relative_to(src)
        if p.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif p.is_file() and not p.name.endswith(".lock"):
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(p, dst)
            except OSError:
                shutil.copy2(p, dst)
    (staging / manifest["generation_dir"]).mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "manifest.json", staging / "manifest.json")
    return staging


def _commit(root: Path, staging: Path, base_generation: int) -> dict[str, Any]:
    """Move the staged generation into `root`, then replace root's manifest (the commit point)."""
    from feedback_nlp.core.io import atomic_write_json
    from feedback_nlp.universal_model import repository_store as store

    staged = store.read_manifest(staging)
    if store.read_manifest(root)["generation"] != base_generation:  # cannot happen under the lock
        raise UpdateError(f"{root}: changed during the update; nothing committed")
    rel = staged["generation_dir"]
    final = root / rel
    shutil.rmtree(final, ignore_errors=True)  # a leftover of a killed commit (never the committed one)
    os.replace(staging / rel, final)
    _fsync(final.parent)
    atomic_write_json(root / store.MANIFEST, staged)
    _fsync(root)
    store.collect_garbage(root, rel)  # deleted questions must not linger in old generations
    return staged


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run(plan: Plan, commit_hook: Any = None) -> dict[str, Any]:
    """The whole job under the repository's write lock; returns the report (written by the CLI).

    report["committed"] is False when a rule failed (the repository is left as it was)."""
    from feedback_nlp.core.io import atomic_write_jsonl
    from feedback_nlp.operations.compare import compare, decide, evaluate, score, table
    from feedback_nlp.serving.registry import load_export
    from feedback_nlp.universal_model import repository_store as store
    from feedback_nlp.universal_model import updates
    from feedback_nlp.universal_model.question_repository import question_rows

    root = plan.root
    with store.write_lock(root):
        before = store.read_manifest(root)
        staging = _stage(root, before)
        try:
            questions = main_questions(plan)
            added = 0
            if questions:
                path = atomic_write_jsonl(staging / "new_questions.jsonl", question_rows(questions))
                added = updates.add(staging, path)["last_update"]["questions"]
            present = [i for i in _stored_ids(staging, store.read_manifest(staging)) if _deleted(i, plan.deletions)]
            if present:
                updates.delete(staging, present)
            # the repository before (committed) and after (staged) on the same frozen queries
            evals = {}
            versions = {}
            for name, folder in (("before", root), ("after", staging)):
                predictor, manifest = load_export(folder, plan.options)
                versions[name] = manifest["model_version"]
                rows = score(predictor, plan.evalset.records, plan.batch_size)
                evals[name] = evaluate("universal_model", plan.evalset.records, rows)
            result = compare(evals, "before", plan.rounds, plan.seed, plan.confidence)
            decision = decide(result["diffs"], plan.rules)["after"]
            header, cells = table(result)
            passed = decision["promote"] or not plan.rules
            if commit_hook is not None:
                commit_hook(staging)
            after = _commit(root, staging, before["generation"]) if passed else store.read_manifest(root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {
        "repository": str(root),
        "committed": passed,
        "model_version": {"before": before["model_version"], "after": after["model_version"]},
        "staged_model_version": versions["after"],
        "questions": {"before": before["counts"]["questions"], "after": after["counts"]["questions"]},
        "transcripts": len(plan.transcripts),
        "transcripts_on_deletion_list": plan.skipped,
        "added": added,
        "deleted": len(present),
        "deletion_list": len(plan.deletions),
        "queries": str(plan.queries),
        "queries_sha256": plan.evalset.sha256,
        "scored_query_ids_sha256": plan.evalset.ids_sha256,
        "queries_scored": len(plan.evalset.records),
        "queries_deleted": plan.evalset.deleted,
        "rules": [r.text for r in plan.rules],
        "decision": decision,
        **result,
        "table": {"header": header, "rows": cells},
    }


def summary(report: dict[str, Any]) -> str:
    """What the job prints: the counts, the before/after table, the decision."""
    from feedback_nlp.operations.compare import markdown

    r = report
    lines = [
        f"{r['repository']}: {r['transcripts']} new transcript(s) ({r['transcripts_on_deletion_list']} on the "
        f"deletion list left out), {r['added']} question(s) added, {r['deleted']} deleted",
        f"queries {r['queries']}: sha256 {r['queries_sha256']}, {r['queries_scored']} scored "
        f"({r['queries_deleted']} removed by the deletion list)",
        markdown(r["table"]["header"], r["table"]["rows"]).rstrip("\n"),
    ]
    if r["committed"]:
        mv = r["model_version"]
        lines.append(
            f"committed: {r['questions']['before']} -> {r['questions']['after']} questions, "
            f"model_version {mv['before']} -> {mv['after']}"
        )
    else:
        lines.append("not committed (the repository is unchanged): " + "; ".join(r["decision"]["failed"]))
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> None:
    from feedback_nlp.core.io import atomic_write_json, atomic_write_text

    atomic_write_json(out / "update.json", report)
    atomic_write_text(out / "update.md", summary(report))
