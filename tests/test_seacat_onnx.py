"""SeaCat's ONNX export (dynamic batch/sentence/token axes) against eager PyTorch."""

from __future__ import annotations

import random

import numpy as np
import torch

from feedback_nlp.core.records import parse_transcript
from feedback_nlp.datamodules.seacat import collate_features, featurize
from feedback_nlp.demo_data.seacat import generate_transcripts
from feedback_nlp.lightning_modules.seacat import NET_INPUTS, SeaCat
from feedback_nlp.lightning_modules.seacat_serving import ONNX_TOLERANCE
from tests.tiny_models import tiny_bert


def test_onnx_export_matches_eager_on_unseen_batch_shapes(tmp_path):
    import onnxruntime as ort

    rows = generate_transcripts(random.Random(3), 12)
    tiny = tiny_bert(tmp_path / "tiny", [t["text"] for r in rows for t in r["turns"]])
    torch.manual_seed(0)
    model = SeaCat(labels=sorted({r["label"] for r in rows}), pretrained=tiny, max_sentences=24, max_tokens=32).eval()
    with torch.no_grad():
        model.net.key.normal_()
    records = [parse_transcript(r) for r in rows]
    manifest = model.export_for_serving(tmp_path / "export", onnx_examples=records[:4])
    assert manifest["onnx"]["files"]["seacat.onnx"] <= ONNX_TOLERANCE
    session = ort.InferenceSession(str(tmp_path / "export" / "seacat.onnx"))
    feats = [featurize(t, 24) for t in records[4:11]]  # 7 transcripts: a new shape
    batch = collate_features(feats, model.tokenizer, 32)
    logits, weights = session.run(None, {k: batch[k].numpy() for k in NET_INPUTS})
    with torch.no_grad():
        want_logits, want_weights = model.net(**{k: batch[k] for k in NET_INPUTS})
    assert logits.shape == (7, len(model.labels))
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=ONNX_TOLERANCE)
    np.testing.assert_allclose(weights, want_weights.numpy(), atol=ONNX_TOLERANCE)


def test_onnx_backend_predictor_gives_the_torch_rows(tmp_path):
    from feedback_nlp.serving.runtime import RuntimeOptions
    from feedback_nlp.serving.seacat import SeaCatPredictor

    rows = generate_transcripts(random.Random(5), 9)
    tiny = tiny_bert(tmp_path / "tiny", [t["text"] for r in rows for t in r["turns"]])
    torch.manual_seed(0)
    model = SeaCat(labels=sorted({r["label"] for r in rows}), pretrained=tiny, max_sentences=24, max_tokens=32).eval()
    with torch.no_grad():
        model.net.key.normal_()
    model.export_for_serving(tmp_path / "export", onnx_examples=[parse_transcript(r) for r in rows[:3]])
    records = [parse_transcript(r) for r in rows[3:]]  # 6 transcripts: a new shape
    torch_rows = SeaCatPredictor.load(tmp_path / "export").predict(records)
    onnx_pred = SeaCatPredictor.load(tmp_path / "export", options=RuntimeOptions(backend="onnx"))
    assert onnx_pred.net is None
    for got, want in zip(onnx_pred.predict(records), torch_rows):
        assert (got["id"], got["label"], got["main_question"]) == (want["id"], want["label"], want["main_question"])
        np.testing.assert_allclose(got["sentence_weights"], want["sentence_weights"], atol=ONNX_TOLERANCE)
