"""The LitServe API object (feedback_nlp/serving/api.py) without HTTP: every task kind through setup, a
dynamic batch of two requests that reuse the same ids, and encode."""

from __future__ import annotations

import random

import pytest
import torch

from feedback_nlp.core.records import decode_request
from feedback_nlp.serving.api import RecordsAPI
from feedback_nlp.serving.registry import load_export


def _serve_two_requests(export, kind, requests):
    manifest = load_export(export)[1]
    api = RecordsAPI(export, kind, manifest["model_version"], max_batch_size=4, ready_dir=export.parent / "ready")
    (export.parent / "ready").mkdir(exist_ok=True)
    assert not api.health()
    api.setup("cpu")
    api._loaded.wait(120)
    assert api.health() and api.predictor is not None
    decoded = [api.decode_request(r) for r in requests]
    out = api.unbatch(api.predict(api.batch(decoded)))
    return [api.encode_response(o) for o in out], load_export(export)[0]


def test_seacat_export_through_the_api(tmp_path):
    from feedback_nlp.demo_data.seacat import generate_transcripts
    from feedback_nlp.lightning_modules.seacat import SeaCat
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    rows = generate_transcripts(random.Random(1), 6)
    tiny = tiny_bert(tmp_path / "tiny", [t["text"] for r in rows for t in r["turns"]])
    torch.manual_seed(0)
    module = SeaCat(labels=sorted({r["label"] for r in rows}), pretrained=tiny, max_sentences=16, max_tokens=24)
    export = export_module(module.eval(), tmp_path / "export")
    a = [{"id": "x", "turns": rows[0]["turns"]}, {"id": "y", "turns": rows[1]["turns"]}]
    b = [{"id": "x", "turns": rows[2]["turns"]}]  # the same id in another request
    (got_a, got_b), predictor = _serve_two_requests(export, "transcript", [a, b])
    want = predictor.predict(decode_request(a + [{"id": "z", "turns": rows[2]["turns"]}], "transcript"))
    assert [r["id"] for r in got_a] == ["x", "y"] and [r["id"] for r in got_b] == ["x"]
    for got, w in zip(got_a + got_b, want):
        assert got["label"] == w["label"] and got["main_question"] == w["main_question"]
        assert got["sentence_weights"] == pytest.approx(w["sentence_weights"], abs=1e-5)
        assert got["model_version"] and got["predicted_at"]


def test_mcml_export_through_the_api_and_onnx(tmp_path):
    from feedback_nlp.lightning_modules.mcml_bert import McmlBertModule
    from feedback_nlp.serving.runtime import RuntimeOptions
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    texts = ["the zipper broke", "late delivery and a damaged box", "wrong size", "it smells"]
    tiny = tiny_bert(tmp_path / "tiny", texts)
    torch.manual_seed(0)
    module = McmlBertModule(
        labels=["damaged", "delivery", "size", "smell"],
        pretrained=tiny,
        pooling="mean",
        threshold=0.5,
        max_source_length=32,
    ).eval()
    export = export_module(module, tmp_path / "export", onnx=True)
    reqs = [[{"id": str(i), "text": t} for i, t in enumerate(texts[:2])], [{"id": "1", "text": texts[2]}]]
    (got_a, got_b), _ = _serve_two_requests(export, "feedback", reqs)
    enc = module.tokenizer(texts[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.sigmoid(module(enc["input_ids"], enc["attention_mask"]))
    for row, p in zip(got_a + got_b, probs.tolist()):
        assert list(row["probabilities"].values()) == pytest.approx(p, abs=1e-5)
        chosen = [lab for lab, v in sorted(row["probabilities"].items(), key=lambda kv: -kv[1]) if v >= 0.5]
        assert row["coarse"] == (chosen or [max(row["probabilities"], key=row["probabilities"].get)])
    onnx_rows = load_export(export, RuntimeOptions(backend="onnx"))[0].predict(
        decode_request([{"id": str(i), "text": t} for i, t in enumerate(texts[:3])], "feedback")
    )
    for row, o in zip(got_a + got_b, onnx_rows):
        assert list(o["probabilities"].values()) == pytest.approx(list(row["probabilities"].values()), abs=1e-5)


def test_warm_started_encoder_decoder_exports_cache_graphs(tmp_path):
    """The offline default (BERT warm-started on both sides): the three seq2seq graphs export and
    pass the exporter's parity check on a second batch shape and cache length; the export serves."""
    from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    tiny = tiny_bert(tmp_path / "tiny", ["the zipper broke", "late delivery and a damaged box"])
    torch.manual_seed(0)
    module = MultiLevelIssuesModule(
        pretrained=tiny, architecture="encoder-decoder", max_source_length=32, max_target_length=6, simcse_model=tiny
    ).eval()
    export = export_module(module, tmp_path / "export", onnx=True)
    manifest = load_export(export)[1]
    files = manifest["onnx"]["files"]
    assert len(files) == 3 and max(files.values()) < 1e-4
    assert set(files) <= set(manifest["files_sha256"])
    rows = load_export(export)[0].predict(decode_request([{"id": "a", "text": "the zipper broke"}], "feedback"))
    assert rows[0]["id"] == "a" and isinstance(rows[0]["coarse"], list) and isinstance(rows[0]["granular"], list)


def test_mcml_checkpoint_from_before_nets_still_loads(tmp_path):
    from feedback_nlp.lightning_modules.mcml_bert import McmlBertModule
    from tests.tiny_models import tiny_bert

    tiny = tiny_bert(tmp_path / "tiny", ["the zipper broke"])
    module = McmlBertModule(labels=["a", "b"], pretrained=tiny)
    old = {k.removeprefix("net."): v.clone() for k, v in module.state_dict().items()}  # encoder.*, head.*
    ckpt = {"state_dict": old}
    fresh = McmlBertModule(labels=["a", "b"], pretrained=tiny)
    fresh.on_load_checkpoint(ckpt)
    fresh.load_state_dict(ckpt["state_dict"])
    assert torch.equal(fresh.net.head[1].weight, module.net.head[1].weight)
