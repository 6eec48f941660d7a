"""ProductSafetyDataModule (001 §3.1, §4.1, Table 2): time splits, the three training variants, eval items.

Also holds the small fixtures (a hand-made claims file, a tiny random BERT) that
tests/test_product_safety.py reuses.
"""

import json
from pathlib import Path

import pytest

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import load_records
from feedback_nlp.datamodules.noisy_negatives import NoisyNegatives
from feedback_nlp.datamodules.product_safety import ProductSafetyDataModule, window_time_split
from feedback_nlp.datamodules.splits import hash_unit

POS = [
    "I got a red rash on my skin after wearing it",
    "The heel broke off and I fell down the stairs",
    "It has a strong chemical smell and I felt sick",
    "A needle in the sleeve cut my finger",
]
NEG = [
    "It is too small and the colour is wrong",
    "The parcel arrived five days late",
    "The zipper broke after one week",
    "There is a stain on the front",
]
FR = {
    "rash": "éruption",
    "heel": "talon",
    "small": "petit",
    "late": "retard",
    "smell": "odeur",
    "needle": "aiguille",
    "zipper": "fermeture",
    "stain": "tache",
}


def write_claims(path: Path, months: int = 5, per_month: int = 8, unlabeled: int = 6) -> Path:
    """Labeled escalated originals (50% safety) in en/de, a French translation of every 2nd one,
    and unlabeled traffic (1 in 6 escalated), spread over `months` months of 2026."""
    rows = []
    for m in range(1, months + 1):
        for k in range(per_month):
            label = k % 2
            text = f"{(POS if label else NEG)[(k // 2 + m) % 4]} order {m}-{k}"
            rid = f"c{m}-{k}"
            rows.append(
                {
                    "id": rid,
                    "text": text,
                    "language": "en" if k % 4 < 2 else "de",
                    "created_at": f"2026-{m:02d}-{k + 1:02d}T10:00:00+00:00",
                    "label": label,
                    "escalated": True,
                }
            )
            if k % 2 == 0:
                fr = " ".join(FR.get(w, w) for w in text.split())
                rows.append({**rows[-1], "id": f"{rid}-tr-fr", "text": fr, "language": "fr", "source_id": rid})
        for k in range(unlabeled):
            text = f"{(POS if k == 5 else NEG)[k % 4]} traffic {m}-{k}"
            rows.append(
                {
                    "id": f"t{m}-{k}",
                    "text": text,
                    "language": "en",
                    "label": None,
                    "created_at": f"2026-{m:02d}-{k + 10:02d}T10:00:00+00:00",
                    "escalated": k == 0,
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_bert(path: Path) -> str:
    """A random 2-layer BERT (hidden 32) with a word-level vocabulary of the fixture's words."""
    import torch
    import transformers

    words = {w for t in POS + NEG + list(FR.values()) for w in t.lower().split()} | {"order", "traffic"}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words) + [str(i) for i in range(10)] + ["-"]
    transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    transformers.BertModel(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("claims")
    return {"claims": str(write_claims(d / "claims.jsonl")), "bert": tiny_bert(d / "bert"), "cache": str(d / "cache")}


def make_dm(files, variant, nn=None, **kw):
    return ProductSafetyDataModule(
        path=files["claims"],
        split="time",
        variant=variant,
        progress=False,
        dev_fraction=0.25,
        noisy_negatives=NoisyNegatives(embedding_model=files["bert"], embedding_cache_dir=files["cache"], **(nn or {})),
        **kw,
    )


def kinds(records):
    return {("tr" if r.source_id else "nn" if r.extra.get("noisy_negative") else "orig") for r in records}


def test_time_splits_and_evaluation_are_the_same_for_every_variant(files):
    evals = []
    for variant in ("original", "original+NN", "original+NN+PC"):
        dm = make_dm(files, variant)
        s = dm.validate()
        assert s.test_month == "2026-05"
        assert {r.id for r in s.test} == {f"c5-{k}" for k in range(8)}  # labeled originals only
        assert {r.id for r in s.traffic} == {f"c5-{k}" for k in range(8)} | {f"t5-{k}" for k in range(6)}
        assert all(r.created_at.month < 5 and r.label is not None and not r.source_id for r in s.train + s.dev)
        evals.append([(x["id"], x["group"], x["in_test"], x["in_traffic"]) for x in dm.eval_items()])
    assert evals[0] == evals[1] == evals[2]
    items = {x[0]: x for x in evals[0]}
    # translations of test comments are evaluated with their source's group (fairness) but are not traffic
    assert items["c5-0-tr-fr"][1] == items["c5-0"][1] and items["c5-0-tr-fr"][2] and not items["c5-0-tr-fr"][3]
    assert not items["t5-0"][2] and items["t5-0"][3]


def test_original_variant_has_no_augmentation(files):
    train, dev = make_dm(files, "original").fit_items()
    assert kinds(train) == kinds(dev) == {"orig"}


def test_noisy_negatives_come_from_the_pre_test_pool(files):
    dm = make_dm(files, "original+NN")
    train, dev = dm.fit_items()
    mined = [r for r in train + dev if r.extra.get("noisy_negative")]
    pool_ids = {f"t{m}-{k}" for m in range(1, 5) for k in range(1, 6)}  # months 1-4, not escalated (k=0)
    assert {r.id for r in dm.pool} == pool_ids
    assert mined and {r.id for r in mined} <= pool_ids and all(r.label == 0 for r in mined)
    assert dm.stats["data/nn_mined"] == len(mined) and dm.stats["data/nn_pool"] == len(pool_ids)
    for r in mined:  # a mined comment lands in dev exactly when the split hash says so
        assert (r in dev) == (hash_unit(r.id, 0) < 0.25)
    capped = make_dm(files, "original+NN", {"max_count": 3})
    assert capped.fit_items() and capped.stats["data/nn_mined"] == 3
    ratio = make_dm(files, "original+NN", {"ratio": 0.05})  # 5% of 32 labeled train+dev claims -> 2
    assert ratio.fit_items() and ratio.stats["data/nn_mined"] == 2


def test_nn_purity_when_the_pool_knows_its_hidden_labels(tmp_path, files):
    rows = [json.loads(x) for x in Path(files["claims"]).read_text().splitlines()]
    for r in rows:  # as feedback_nlp/scripts/cpsc_to_claims.py --unlabeled-fraction does
        if r["label"] is None and not r["escalated"]:
            r["true_label"] = int(r["id"].endswith("-5"))  # the 6th traffic comment per month is a safety case
    p = tmp_path / "hidden.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dm = ProductSafetyDataModule(
        path=str(p),
        split="time",
        variant="original+NN",
        progress=False,
        dev_fraction=0.25,
        noisy_negatives=NoisyNegatives(embedding_model=files["bert"], embedding_cache_dir=files["cache"]),
    )
    train, dev = dm.fit_items()
    mined = [r for r in train + dev if r.extra.get("noisy_negative")]
    assert dm.stats["data/nn_purity"] == pytest.approx(sum(r.extra["true_label"] == 0 for r in mined) / len(mined))


def test_parallel_corpus_translations_stay_in_their_source_split(files):
    dm = make_dm(files, "original+NN+PC")
    train, dev = dm.fit_items()
    s = dm.validate()
    for part, originals in ((train, s.train), (dev, s.dev)):
        src = {r.id: r for r in originals}
        trs = [r for r in part if r.source_id]
        assert trs and all(r.source_id in src and r.label == src[r.source_id].label for r in trs)
        assert {r.language for r in trs} == {"fr"}
    assert dm.stats["data/train_translations"] == sum(bool(r.source_id) for r in train)


def test_window_time_split_uses_the_last_labeled_months(files):
    records = load_records(files["claims"], "claim")
    s = window_time_split(records, 0, 0.1, test_months=2)
    assert s.test_month == "2026-04..2026-05"
    assert {r.created_at.month for r in s.test} == {4, 5} and all(r.created_at.month < 4 for r in s.train + s.dev)
    tr = next(r for r in s.test if r.source_id)
    assert any(r.id == tr.source_id for r in s.test)


def test_missing_class_in_train_is_a_data_error(tmp_path, files):
    rows = [json.loads(x) for x in Path(files["claims"]).read_text().splitlines()]
    only_pos = [r for r in rows if r["label"] != 0 or r["created_at"].startswith("2026-05")]
    p = tmp_path / "pos.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in only_pos))
    with pytest.raises(DataValidationError, match="train split needs labeled positives"):
        ProductSafetyDataModule(path=str(p), split="time", variant="original").validate()
    with pytest.raises(ValueError, match="variant"):
        ProductSafetyDataModule(path=str(p), variant="original+PC")


def test_batches_and_predict_file(files, tmp_path):
    from feedback_nlp.core.model_factory import load_tokenizer

    dm = make_dm(files, "original", predict_path=files["claims"])
    dm.connect(tokenizer=load_tokenizer(files["bert"]), max_length=8)  # the model's max_length
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["input_ids"].shape[1] <= 8 and len(batch["ids"]) == len(batch["labels"])
    for key in ("index", "language", "group", "in_test", "in_traffic", "is_original", "escalated"):
        assert batch[key].shape == batch["labels"].shape
    assert dm.languages == ["de", "en", "fr"]
    assert len(dm.predict_records()) == len(load_records(files["claims"], "claim"))
