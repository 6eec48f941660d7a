"""ProductSafetyDataModule's other inputs (001 §3.1): translations from a separate parallel-corpus file
(data.parallel_corpus.path), unlabeled traffic from its own file (data.noisy_negatives.unlabeled_path),
and machine translation by a Hugging Face model (a data.parallel_corpus.translator section).
Reference: the same claims given as one file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedback_nlp.datamodules.noisy_negatives import NoisyNegatives
from feedback_nlp.datamodules.parallel_corpus import HFTranslator, ParallelCorpus
from feedback_nlp.datamodules.product_safety import ProductSafetyDataModule
from tests.test_product_safety_data import FR, NEG, POS, tiny_bert, write_claims


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory):
    """A random 1-layer BART with a word-level tokenizer and M2M100-style language tokens; 300
    positions, since the DataModule generates up to HFTranslator's default max_length (256)."""
    import torch
    import transformers

    d = tmp_path_factory.mktemp("tiny_bart_256")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "__de__", "__en__", "__fr__"] + sorted(
        {w for t in POS + NEG + list(FR.values()) for w in t.lower().split()}
    )
    transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(d)
    cfg = transformers.BartConfig(
        vocab_size=len(words),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=300,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
        forced_eos_token_id=None,
    )
    torch.manual_seed(0)
    transformers.BartForConditionalGeneration(cfg).save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    """One claims file, and the same rows spread over three files: originals, translations
    (+ an original that must be ignored there), and pre-test unlabeled traffic."""
    d = tmp_path_factory.mktemp("claims_sources")
    whole = write_claims(d / "whole.jsonl")
    rows = [json.loads(x) for x in whole.read_text().splitlines()]
    translations = [r for r in rows if r.get("source_id")]
    unlabeled = [r for r in rows if r["label"] is None and not r["created_at"].startswith("2026-05")]
    main = [r for r in rows if r not in translations and r not in unlabeled]
    stray = {
        "id": "stray",
        "text": "It has a strong chemical smell",
        "language": "en",
        "label": 1,
        "created_at": "2026-02-01T00:00:00+00:00",
    }

    def write(name, part):
        (d / name).write_text("".join(json.dumps(r) + "\n" for r in part))
        return str(d / name)

    return {
        "whole": str(whole),
        "main": write("main.jsonl", main),
        "pc": write("pc.jsonl", translations + [stray]),
        "unlabeled": write(
            "unlabeled.jsonl", unlabeled + [{**main[0], "id": "labeled-in-unlabeled-file", "escalated": False}]
        ),
        "bert": tiny_bert(d / "bert"),
        "cache": str(d / "cache"),
        "translation_ids": {r["id"] for r in translations},
        "unlabeled_ids": {r["id"] for r in unlabeled},
        "dir": d,
    }


def dm(files, path, nn=None, pc=None):
    return ProductSafetyDataModule(
        path=path,
        split="time",
        variant="original+NN+PC",
        progress=False,
        dev_fraction=0.25,
        noisy_negatives=NoisyNegatives(embedding_model=files["bert"], embedding_cache_dir=files["cache"], **(nn or {})),
        parallel_corpus=ParallelCorpus(**(pc or {})),
    )


def ids(records):
    return sorted(r.id for r in records)


def test_pc_path_and_unlabeled_path_equal_one_combined_file(split_files):
    f = split_files
    one = dm(f, f["whole"])
    three = dm(f, f["main"], nn={"unlabeled_path": f["unlabeled"]}, pc={"path": f["pc"]})
    assert ids(three.validate().train) == ids(one.validate().train) and ids(three.splits.test) == ids(one.splits.test)
    train_one, dev_one = one.fit_items()
    train_three, dev_three = three.fit_items()
    assert (ids(train_three), ids(dev_three)) == (ids(train_one), ids(dev_one))
    # the pool is the unlabeled file's rows (minus escalated ones), never its labeled row
    pool = {r.id for r in three.pool}
    assert pool == {r.id for r in one.pool}
    assert pool == {i for i in f["unlabeled_ids"] if not i.endswith("-0")}  # k == 0 is escalated
    assert "labeled-in-unlabeled-file" not in pool
    # translations come from the pc file; an original there is not training data
    used = {r.id for r in train_three + dev_three if r.source_id}
    assert used and used <= f["translation_ids"]
    assert "stray" not in {r.id for r in train_three + dev_three + three.splits.test + three.splits.traffic}
    # test translations (fairness groups) come from the pc file too
    assert {x["id"] for x in three.eval_items()} == {x["id"] for x in one.eval_items()}


def test_without_the_extra_files_there_is_nothing_to_add(split_files):
    f = split_files
    bare = dm(f, f["main"])
    train, dev = bare.fit_items()
    assert bare.pool == [] and not any(r.source_id for r in train + dev)


def test_hf_translator_translates_train_and_dev_into_each_language(split_files, tiny_seq2seq, monkeypatch):
    f = split_files
    codes = {"de": "__de__", "en": "__en__", "fr": "__fr__"}
    cache = f["dir"] / "translations"
    hf = dm(
        f,
        f["main"],
        pc={
            "languages": ["en", "fr"],
            "translator": HFTranslator(tiny_seq2seq, lang_codes=codes, cache_dir=str(cache)),
        },
    )
    train, dev = hf.fit_items()
    s = hf.validate()
    for part, originals in ((train, s.train), (dev, s.dev)):
        src = {r.id: r for r in originals}
        trs = [r for r in part if r.source_id]
        # every original is translated into each configured language but its own (none empty here)
        want = sorted((r.id, lang) for r in originals for lang in ("en", "fr") if lang != r.language)
        got = sorted((t.source_id, t.language) for t in trs)
        assert set(got) <= set(want) and len(got) >= len(want) * 0.9
        assert all(t.label == src[t.source_id].label and t.created_at == src[t.source_id].created_at for t in trs)
        assert all(t.extra["translated_by"] == tiny_seq2seq and t.id == f"{t.source_id}#{t.language}" for t in trs)
    # test claims are not machine-translated unless translate_test: evaluation stays comparable
    assert not any(x["id"].count("#") for x in hf.eval_items())
    # a second run reads every translation from the cache and never loads the model
    import feedback_nlp.core.model_factory as factory

    monkeypatch.setattr(factory, "load_model", lambda *a, **k: pytest.fail("cached translations must not load"))
    again = dm(
        f,
        f["main"],
        pc={
            "languages": ["en", "fr"],
            "translator": HFTranslator(tiny_seq2seq, lang_codes=codes, cache_dir=str(cache)),
        },
    )
    train2, dev2 = again.fit_items()
    assert [(r.id, r.text) for r in train2 + dev2] == [(r.id, r.text) for r in train + dev]


def test_hf_translator_needs_model_and_languages():
    """Built from config: the translator section names its own class and keys."""

    from feedback_nlp.core.config import ConfigError, load_config
    from feedback_nlp.core.instantiate import instantiate

    with pytest.raises(ValueError, match="data.parallel_corpus.translator needs data.parallel_corpus.languages"):
        ParallelCorpus(translator=HFTranslator("some-model"))
    exp = Path(__file__).resolve().parent.parent / "configs/experiment/product_safety_demo.yaml"
    section = "{class_path: feedback_nlp.datamodules.parallel_corpus.HFTranslator}"
    cfg = load_config(exp, [f"data.parallel_corpus.translator={section}", "data.parallel_corpus.languages=[de]"])
    with pytest.raises(ConfigError, match="config section 'data.parallel_corpus.translator' is missing required key"):
        instantiate(cfg.data, "data")
