"""002 §2.2-2.3: SeaCat's flat real-sentence batching against a naive padded time-distributed
forward, attention masking, freezing, and the serving export (tiny random BERT)."""

from __future__ import annotations

import random

import pytest
import torch

from feedback_nlp.core.model_factory import load_model, load_tokenizer
from feedback_nlp.core.records import Transcript, Turn
from feedback_nlp.datamodules.seacat import collate_features, featurize
from feedback_nlp.lightning_modules.seacat import SeaCat, SeaCatNet, freeze_lower_layers
from feedback_nlp.nets.sentence_position import sinusoidal_table
from tests.tiny_models import tiny_bert

LABELS = ["delivery", "refund"]


def _transcripts() -> list[Transcript]:
    return [
        Transcript(
            "t1",
            [Turn("customer", "Hi. Where is my package?"), Turn("agent", "Hello. Let me check.")],
            "delivery",
            5.0,
            main_question="Where is my package?",
        ),
        Transcript(
            "t2",
            [
                Turn("agent", "Hi!"),
                Turn("customer", "I want a refund for the broken cable. Thanks."),
                Turn("agent", "Sure. Done."),
                Turn("customer", "Hi."),
            ],
            "refund",
            7.0,
        ),
        Transcript("t3", [Turn("customer", "Hi.")], "unseen-label"),
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    texts = [turn.text for t in _transcripts() for turn in t.turns]
    return tiny_bert(tmp_path_factory.mktemp("tiny_bert"), texts)


def _batch(tokenizer, max_sentences=8, max_tokens=16, dedupe=True):
    feats = [featurize(t, max_sentences) for t in _transcripts()]
    return feats, collate_features(feats, tokenizer, max_tokens, {lab: i for i, lab in enumerate(LABELS)}, dedupe)


def test_collate_tokenizes_only_distinct_real_sentences_and_maps_them_back(tiny):
    tok = load_tokenizer(tiny)
    feats, batch = _batch(tok)
    real = [s for f in feats for s in f.sentences]
    assert len(real) == 11 and len(set(real)) == 9  # "Hi." three times
    assert batch["input_ids"].shape[0] == 9  # never the B x S x T block
    assert batch["sentence_mask"].shape == (3, 6)  # S = most sentences in the batch
    assert batch["sentence_mask"].sum().item() == 11
    decoded = tok.batch_decode(batch["input_ids"], skip_special_tokens=True)
    for _r, (src, slot) in enumerate(zip(batch["sentence_source"].tolist(), batch["sentence_index"].tolist())):
        b, s = divmod(slot, 6)
        assert decoded[src] == feats[b].sentences[s].lower()
    assert batch["labels"].tolist() == [0, 1, -100]
    assert batch["positions"][1].tolist() == [8, 9, 10, 11, 12, 13]  # agent speaks first: offsets 0..5, + S
    assert batch["positions"][0, :4].tolist() == [6, 7, 8, 9]  # agent's first sentence is index 2
    assert batch["is_customer"][0].tolist() == [True, True, False, False, False, False]


def test_collate_without_dedupe_keeps_every_real_sentence(tiny):
    _, batch = _batch(load_tokenizer(tiny), dedupe=False)
    assert batch["input_ids"].shape[0] == 11


def _naive_padded(net: SeaCatNet, tokenizer, feats, max_sentences: int, max_tokens: int):
    """The paper's formulation: B x S x T zero-padded block, encoder on every (padded) sentence."""
    b, s = len(feats), max_sentences
    texts = [f.sentences[i] if i < len(f.sentences) else "" for f in feats for i in range(s)]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_tokens, return_tensors="pt")
    mask = torch.tensor([[i < len(f.sentences) for i in range(s)] for f in feats])
    enc["attention_mask"][~mask.view(-1)] = 0
    hidden = net.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    emb = ((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)).view(b, s, -1)
    pos = torch.tensor([f.positions + [0] * (s - len(f.positions)) for f in feats])
    grid = emb + sinusoidal_table(2 * max_sentences + 1, emb.shape[-1])[pos]
    scores = (grid @ net.key).masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, -1)
    return net.classifier((weights.unsqueeze(-1) * grid).sum(1)), weights


def test_flat_forward_equals_the_naive_padded_time_distributed_forward(tiny):
    tok = load_tokenizer(tiny)
    torch.manual_seed(0)
    net = SeaCatNet(load_model("AutoModel", tiny), len(LABELS), max_sentences=8).eval()
    with torch.no_grad():
        net.key.normal_()  # a non-trivial key so the weights differ per sentence
        feats, batch = _batch(tok, max_sentences=8, max_tokens=16)
        logits, weights = net(
            **{
                k: batch[k]
                for k in (
                    "input_ids",
                    "attention_mask",
                    "sentence_source",
                    "sentence_index",
                    "sentence_mask",
                    "positions",
                )
            }
        )
        ref_logits, ref_weights = _naive_padded(net, tok, feats, 8, 16)
    torch.testing.assert_close(weights, ref_weights[:, : weights.shape[1]], atol=1e-5, rtol=1e-4)
    assert torch.all(ref_weights[:, weights.shape[1] :] == 0)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~batch["sentence_mask"]] == 0)


def test_position_embedding_changes_the_weights(tiny):
    tok = load_tokenizer(tiny)
    _, batch = _batch(tok)
    inputs = {
        k: batch[k]
        for k in ("input_ids", "attention_mask", "sentence_source", "sentence_index", "sentence_mask", "positions")
    }
    torch.manual_seed(0)
    on = SeaCatNet(load_model("AutoModel", tiny), 2, 8, position_embedding=True).eval()
    off = SeaCatNet(on.encoder, 2, 8, position_embedding=False).eval()
    off.load_state_dict(on.state_dict())
    with torch.no_grad():
        on.key.normal_()
        off.key.copy_(on.key)
        assert not torch.allclose(on(**inputs)[1], off(**inputs)[1])


def test_freeze_lower_layers(tiny):
    enc = load_model("AutoModel", tiny)
    freeze_lower_layers(enc, 1)
    assert not any(p.requires_grad for p in enc.embeddings.parameters())
    assert not any(p.requires_grad for p in enc.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in enc.encoder.layer[1].parameters())
    freeze_lower_layers(enc, -1)
    assert not any(p.requires_grad for p in enc.parameters())


def test_frozen_encoder_gets_no_gradient_and_no_dropout(tiny):
    model = SeaCat(labels=LABELS, pretrained=tiny, max_sentences=8, max_tokens=16, freeze_layers=-1)
    model.train()
    assert not model.net.encoder.training and model.net.classifier.training
    _, batch = _batch(model.tokenizer)
    loss = model.training_step(batch, 0)
    loss.backward()
    assert model.net.key.grad is not None
    assert all(p.grad is None for p in model.net.encoder.parameters())


def test_export_for_serving_round_trip_without_pickles(tiny, tmp_path):
    torch.manual_seed(0)
    model = SeaCat(labels=LABELS, pretrained=tiny, max_sentences=8, max_tokens=16).eval()
    with torch.no_grad():
        model.net.key.normal_()
    _, batch = _batch(model.tokenizer)
    with torch.no_grad():
        want = model.predict_step(batch, 0)
    manifest = model.export_for_serving(tmp_path / "export")
    assert manifest["task"] == "seacat" and manifest["labels"] == LABELS
    assert manifest["max_sentences"] == 8 and manifest["max_tokens"] == 16 and manifest["main_question_window"] == 2
    files = {p.suffix for p in (tmp_path / "export").rglob("*") if p.is_file()}
    assert not files & {".bin", ".pt", ".pth", ".ckpt", ".pkl"}
    from feedback_nlp.serving.seacat import SeaCatPredictor

    got = SeaCatPredictor.load(tmp_path / "export").predict(_transcripts())
    assert [r["id"] for r in got] == ["t1", "t2", "t3"]
    for g, w in zip(got, want):
        assert g["label"] == w["label"] and g["main_question"] == w["main_question"]
        assert g["sentence_weights"] == pytest.approx(w["sentence_weights"], abs=1e-5)
        assert sum(g["label_distribution"].values()) == pytest.approx(1.0, abs=1e-5)
    assert got[0]["main_question"]["rule2"] in ("Hi.", "Where is my package?")  # customer, within +-2


def test_predictor_from_checkpoint_reads_weights_only(tiny, tmp_path):
    import lightning as L

    from feedback_nlp.lightning_modules.seacat_serving import load_predictor_from_checkpoint

    model = SeaCat(labels=LABELS, pretrained=tiny, max_sentences=8, max_tokens=16)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    predictor = load_predictor_from_checkpoint(tmp_path / "m.ckpt")
    torch.testing.assert_close(predictor.net.key, model.net.key)
    assert predictor.labels == LABELS


def test_unknown_model_task_is_rejected_by_the_predictor(tmp_path):
    from feedback_nlp.lightning_modules.seacat_serving import SeaCatPredictor

    (tmp_path / "seacat.json").write_text('{"task": "product_safety", "labels": []}')
    with pytest.raises(ValueError, match="not seacat"):
        SeaCatPredictor.load(tmp_path)


def test_demo_generator_marks_a_main_question_the_featurizer_recovers():
    from feedback_nlp.core.records import parse_transcript
    from feedback_nlp.demo_data.seacat import generate_transcripts

    for row in generate_transcripts(random.Random(0), 20):
        f = featurize(parse_transcript(row), 64)
        assert row["main_question"] in f.sentences
        i = f.sentences.index(row["main_question"])
        assert f.speakers[i] == "customer" and abs(i - f.agent_first) <= 2


def test_example_table_holds_whole_transcripts(tiny):
    model = SeaCat(labels=LABELS, pretrained=tiny, max_sentences=8, max_tokens=16, log_examples=2).eval()
    _, batch = _batch(model.tokenizer)
    model.on_test_epoch_start()
    model.test_step(batch, 0)
    ids = [row[0] for row in model._examples]
    assert sorted(set(ids)) == ["t1", "t2"] and len(ids) == 4 + 6  # every sentence of both
    assert sum(row[8] for row in model._examples) == 1  # t1's annotated question
    offsets = [row[2] for row in model._examples if row[0] == "t1"]
    assert offsets == [-2, -1, 0, 1]


def test_frozen_encoder_embedding_cache_is_exact_and_skips_seen_sentences(tiny):
    tok = load_tokenizer(tiny)
    enc = load_model("AutoModel", tiny)
    freeze_lower_layers(enc, -1)
    cached = SeaCatNet(enc, 2, 8, cache_size=5).eval()
    plain = SeaCatNet(enc, 2, 8, cache_size=0).eval()
    calls = []
    enc.register_forward_hook(lambda m, args, kwargs_out=None: calls.append(1))
    _, batch = _batch(tok)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        want = plain.encode_sentences(ids, mask)
        calls.clear()
        first = cached.encode_sentences(ids, mask)  # 9 distinct sentences, cache keeps 5
        second = cached.encode_sentences(ids[-5:], mask[-5:])
    torch.testing.assert_close(first, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(second, want[-5:], atol=1e-6, rtol=1e-5)
    assert len(calls) == 1 and len(cached._cache) == 5  # the 5 most recent were not re-encoded


def test_serving_featurization_equals_the_datamodules():
    """datamodules/seacat_inputs.py (what serving uses, Lightning-free) builds exactly the DataModule's
    tensors; the DataModule keeps its own copy until it imports these functions."""
    import tempfile
    from pathlib import Path

    from feedback_nlp.core.records import parse_transcript
    from feedback_nlp.datamodules import seacat as dm
    from feedback_nlp.datamodules import seacat_inputs as nets
    from feedback_nlp.demo_data.seacat import generate_transcripts
    from tests.tiny_models import train_wordpiece

    records = [parse_transcript(r) for r in generate_transcripts(random.Random(4), 8)]
    with tempfile.TemporaryDirectory() as tmp:
        tok = train_wordpiece([t.text for r in records for t in r.turns], Path(tmp))
    for s in (4, 64):
        a = [dm.featurize(t, s) for t in records]
        b = [nets.featurize(t, s) for t in records]
        assert [vars(x) for x in a] == [vars(y) for y in b]
        ba, bb = dm.collate_features(a, tok, 16, {"x": 0}), nets.collate_features(b, tok, 16, {"x": 0})
        assert ba.keys() == bb.keys()
        for k in ba:
            if isinstance(ba[k], torch.Tensor):
                assert torch.equal(ba[k], bb[k]), k
            else:
                assert ba[k] == bb[k], k
