"""001 §3.1 translation augmentation: parallel-corpus lookup and an HF seq2seq model (tiny, random)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from feedback_nlp.core.records import Claim, Feedback
from feedback_nlp.datamodules.parallel_corpus import HFTranslator, ParallelCorpusTranslator, augment, make_translation

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def claim(id_, text, lang="de", label=1, source_id=None, created_at=T0):
    return Claim(id=id_, text=text, language=lang, created_at=created_at, label=label, source_id=source_id)


def test_corpus_translations_take_label_and_date_from_source():
    src = [claim("a", "Der Absatz brach ab.", label=1), claim("b", "Zu klein.", label=0)]
    # corpus records may carry their own (wrong/missing) label and date: the source's win
    later = datetime(2030, 1, 1, tzinfo=UTC)
    corpus = [
        claim("a-en", "The heel broke off.", "en", label=None, source_id="a", created_at=later),
        claim("a-fr", "Le talon s'est cassé.", "fr", label=0, source_id="a"),
        claim("b-en", "Too small.", "en", label=0, source_id="b"),
        claim("z-en", "orphan", "en", label=1, source_id="zzz"),
    ]
    tr = ParallelCorpusTranslator(corpus)
    out = tr.translate(src, ["en", "fr", "pl", "de"])
    assert [(t.id, t.language, t.label, t.source_id) for t in out] == [
        ("a-en", "en", 1, "a"),
        ("a-fr", "fr", 1, "a"),
        ("b-en", "en", 0, "b"),
    ]
    assert all(t.created_at == T0 for t in out) and out[0].text == "The heel broke off."
    assert tr.missing == 3  # a->pl, b->fr, b->pl; never into the source's own language
    assert [r.id for r in augment(src, tr, None)] == ["a", "a-en", "a-fr", "b", "b-en"]
    assert tr.languages() == ["en", "fr"]


def test_make_translation_is_generic_but_needs_the_fields():
    @dataclass
    class Doc:
        id: str
        text: str
        language: str
        source_id: str | None = None
        score: float = 0.5
        extra: dict = field(default_factory=dict)

    t = make_translation(Doc("d1", "Hallo", "de", score=0.9), "Hello", "en")
    assert (t.id, t.text, t.language, t.source_id, t.score, t.extra["translation"]) == (
        "d1#en",
        "Hello",
        "en",
        "d1",
        0.9,
        True,
    )
    with pytest.raises(TypeError, match="source_id"):
        make_translation(Feedback("f", "x", ["c"], ["g"]), "y", "en")


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory):
    """A random 1-layer BART with a word-level tokenizer and NLLB-style language tokens."""
    import transformers

    d = tmp_path_factory.mktemp("tiny_bart")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "__de__",
        "__en__",
        "__fr__",
    ] + "der absatz brach ab the heel broke off le talon est cassé zu klein too small".split()
    tok = transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    tok.save_pretrained(d)
    cfg = transformers.BartConfig(
        vocab_size=len(words),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
        forced_eos_token_id=None,
    )
    import torch

    torch.manual_seed(0)
    transformers.BartForConditionalGeneration(cfg).save_pretrained(d)
    return str(d)


def test_hf_translator_runs_offline_and_caches(tiny_seq2seq, tmp_path, monkeypatch):
    codes = {"de": "__de__", "en": "__en__", "fr": "__fr__"}
    hf = HFTranslator(
        tiny_seq2seq,
        codes,
        style="forced_bos",
        cache_dir=str(tmp_path),
        batch_size=2,
        generate_kwargs={"min_new_tokens": 3, "max_new_tokens": 5},
    )
    src = [
        claim("a", "Der Absatz brach ab.", label=1),
        claim("b", "Zu klein.", label=0),
        claim("c", "The heel broke off.", "en", label=1),
    ]
    out = hf.translate(src, ["en", "fr"])
    # a, b -> en, fr; c -> fr only (never into its own language)
    assert sorted((t.source_id, t.language) for t in out) == [
        ("a", "en"),
        ("a", "fr"),
        ("b", "en"),
        ("b", "fr"),
        ("c", "fr"),
    ]
    assert all(t.text.strip() and t.id == f"{t.source_id}#{t.language}" for t in out)
    assert {t.source_id: t.label for t in out} == {"a": 1, "b": 0, "c": 1}
    assert all(t.extra["translated_by"] == tiny_seq2seq for t in out)

    import feedback_nlp.core.model_factory as factory

    monkeypatch.setattr(factory, "load_model", lambda *a, **k: pytest.fail("cached translations must not load"))
    again = HFTranslator(tiny_seq2seq, codes, style="forced_bos", cache_dir=str(tmp_path)).translate(src, ["en", "fr"])
    assert [(t.id, t.text) for t in again] == [(t.id, t.text) for t in out]
    with pytest.raises(ValueError, match="target languages"):
        hf.translate(src, None)


def test_hf_translator_language_codes():
    nllb = HFTranslator("facebook/nllb-200-distilled-600M")
    assert nllb.code("de", "forced_bos") == "deu_Latn" and nllb.code("no", "forced_bos") == "nob_Latn"
    assert HFTranslator("facebook/m2m100_418M").code("pl", "forced_bos") == "__pl__"
    assert HFTranslator("x", {"de": "DE"}).code("de", "prefix") == "DE"
