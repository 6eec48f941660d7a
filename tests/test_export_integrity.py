"""Every file whose content changes a prediction is hashed, and loading refuses an edit naming it.

The cases are the ones a hand edit or a partial copy produces: weights, the decision threshold
and label map (classifier.json), the tokenizer, the generation settings of the issue model, the
manifest's own model version, and a question repository's vote and retrieval settings (kept in
its manifest, covered by its model version).
"""

from __future__ import annotations

import json

import pytest

from feedback_nlp.serving.manifest import ExportError
from feedback_nlp.serving.registry import load_export
from tests.serving_helpers import safety_export


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture()
def safety(tmp_path):
    return safety_export(tmp_path)


def _threshold(d):
    d["threshold"] = 0.999999


def _labels(d):
    d["labels"] = d["labels"][::-1]


def _vocab(d):
    d["model"]["vocab"]["the"] = 3


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name,edit",
    [
        ("classifier.json", _threshold),  # the threshold: every decision would flip silently
        ("classifier.json", _labels),  # the label map
        ("tokenizer.json", _vocab),  # the tokenizer
        ("config.json", lambda d: d.update(hidden_dropout_prob=0.5)),
    ],
    ids=["threshold", "label-map", "tokenizer", "model-config"],
)
def test_an_edited_settings_file_is_refused_by_name(safety, name, edit):
    load_export(safety)  # untouched: loads
    _edit_json(safety / name, edit)
    with pytest.raises(ExportError, match=f"files do not match the manifest .*{name}: sha256 differs"):
        load_export(safety)


def test_edited_weights_and_an_edited_model_version_are_refused(safety):
    manifest = safety / "manifest.json"
    original = manifest.read_text()
    _edit_json(manifest, lambda d: d.update(model_version="0" * 16))
    with pytest.raises(ExportError, match=r"is not the version of its files \(\w+\); the manifest was edited"):
        load_export(safety)
    manifest.write_text(original)
    _flip_last_byte(safety / "classifier_head.safetensors")
    with pytest.raises(ExportError, match="classifier_head.safetensors: sha256 differs"):
        load_export(safety)


def test_an_edited_generation_setting_of_the_issue_model_is_refused(tmp_path):
    import torch

    from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    tiny = tiny_bert(tmp_path / "tiny", ["the zipper broke", "late delivery and a damaged box"])
    torch.manual_seed(0)
    module = MultiLevelIssuesModule(
        pretrained=tiny, architecture="encoder-decoder", max_source_length=32, max_target_length=6, simcse_model=tiny
    ).eval()
    export = export_module(module, tmp_path / "export")
    load_export(export)
    for name, change in (
        ("issue_task.json", lambda d: d["generation"].update(num_beams=7)),
        ("generation_config.json", lambda d: d.update(length_penalty=0.1)),
    ):
        before = (export / name).read_text()
        _edit_json(export / name, change)
        with pytest.raises(ExportError, match=f"{name}: sha256 differs"):
            load_export(export)
        (export / name).write_text(before)
    load_export(export)  # restored: loads again


def test_a_repository_with_edited_vote_or_retrieval_settings_is_refused(tmp_path):
    from feedback_nlp.core.records import Question
    from feedback_nlp.universal_model.repository_store import RepositoryError
    from feedback_nlp.universal_model.retrieval import RetrievalSettings
    from feedback_nlp.universal_model.updates import export

    questions = [Question(f"q{i}", f"where is my order number {i}", {"intent": "where"}) for i in range(6)]
    questions += [Question(f"r{i}", f"i want a refund for item {i}", {"intent": "refund"}) for i in range(6)]
    root = tmp_path / "repo"
    export(root, questions, RetrievalSettings(method="bm25", k=3), ["intent"], [], {"weighting": "similarity"})
    load_export(root)
    manifest = root / "manifest.json"
    original = manifest.read_text()
    for change in (
        lambda d: d["prediction"].update(weighting="count"),
        lambda d: d["retrieval"].update(k=11),
        lambda d: d["labels"].update(categorical=[]),
    ):
        _edit_json(manifest, change)
        with pytest.raises(RepositoryError, match="is not the version of its files and settings"):
            load_export(root)
        manifest.write_text(original)
    assert load_export(root)[1]["model_version"] == json.loads(original)["model_version"]
