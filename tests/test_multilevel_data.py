"""Multi-task samples (000 §3.2, App. A), span infilling, batching and collation for the issue model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from torch.utils.data import DistributedSampler

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.issue_sets import dedupe_issues, join_issues, parse_issues
from feedback_nlp.core.records import Feedback
from feedback_nlp.datamodules.batching import EpochBatchSampler, EpochRandomSampler, length_grouped_batches
from feedback_nlp.datamodules.multilevel_issues import (
    FeedbackEvalCollator,
    MultilevelIssuesDataModule,
    MultiTaskSamples,
    Seq2SeqCollator,
    label_strip_id,
)
from feedback_nlp.datamodules.span_infilling import make_span_infilling, random_spans_mask, sentinel_tokens
from tests.tiny_models import train_wordpiece

PREFIXES = {
    "coarse": "identify high-level issues: ",
    "granular": "identify fine-grain issues: ",
    "summarization": "summarize: ",
    "span_infilling": "fill in the spans: ",
    "classification": "classify: ",
}


def records(n: int = 6) -> list[Feedback]:
    out = []
    for i in range(n):
        extra = {"summary": f"The customer says item {i} broke."} if i % 2 == 0 else {}
        if i < 3:
            extra["label"] = "toys"
        out.append(
            Feedback(
                f"fb-{i}",
                f"The item {i} broke. It smells bad. Delivery took {i + 2} weeks.",
                ["damaged item", "smell issue"],
                [f"item {i} broke", "smells bad"],
                extra=extra,
            )
        )
    return out


@pytest.fixture(scope="module")
def bert_tok(tmp_path_factory):
    texts = [r.text for r in records()] + list(PREFIXES.values())
    return train_wordpiece(texts, tmp_path_factory.mktemp("tok"), vocab_size=200)


def test_issue_text_round_trip():
    assert join_issues(["size issue", "not as described"]) == "size issue, not as described"
    assert parse_issues(" size issue ,Size Issue, ,not  as described,") == ["size issue", "not as described"]
    assert parse_issues("") == []
    assert join_issues(["a, b"]) == "a b"  # a comma inside one issue must not split it into two
    assert dedupe_issues(["Late delivery", "late delivery", "box"]) == ["Late delivery", "box"]


def test_two_samples_per_feedback_mixed_one_to_one():
    ds = MultiTaskSamples(records(), PREFIXES, shuffle_sentences=False, shuffle_issues=False)
    assert len(ds) == 12
    tasks = [ds[i]["task"] for i in range(len(ds))]
    assert tasks.count("coarse") == tasks.count("granular") == 6
    first = {ds[i]["task"]: ds[i] for i in range(2)}
    assert first["coarse"]["source"] == "identify high-level issues: " + records()[0].text
    assert first["coarse"]["target"] == "damaged item, smell issue"
    assert first["granular"]["target"] == "item 0 broke, smells bad"


def test_auxiliary_tasks_follow_their_weights_and_fields():
    ds = MultiTaskSamples(
        records(),
        PREFIXES,
        weights={"summarization": 0.5, "classification": 1.0, "span_infilling": 0.5},
        shuffle_sentences=False,
    )
    tasks = [t for t, _ in ds.specs]
    assert (
        tasks.count("summarization") == 3 and tasks.count("classification") == 6 and tasks.count("span_infilling") == 3
    )
    for i, (task, r) in enumerate(ds.specs):
        item, rec = ds[(0, i)], records()[r]
        if task == "summarization":
            assert item["target"] == rec.extra["summary"] and item["source"] == "summarize: " + rec.text
        elif task == "classification":
            assert item["target"] == "toys" and "label" in rec.extra  # only records with a label
        elif task == "span_infilling":
            assert item["source"].startswith("fill in the spans: <") or "<extra_id_0>" in item["source"]
            assert item["target"].startswith("<extra_id_0>")


def test_auxiliary_task_without_its_field_is_a_clear_error():
    recs = [Feedback("a", "x y z", ["c"], ["g"], extra={})]
    with pytest.raises(ValueError, match="summary"):
        MultiTaskSamples(recs, PREFIXES, weights={"summarization": 1.0})


def _restore(source: str, target: str) -> str:
    """Invert span infilling: put every sentinel's words back in the source."""
    spans, cur = {}, None
    for w in target.split():
        if w.startswith("<extra_id_"):
            cur = w
            spans[cur] = []
        else:
            spans[cur].append(w)
    return " ".join(" ".join(spans[w]) if w in spans else w for w in source.split()).replace("  ", " ").strip()


@pytest.mark.parametrize("seed", range(30))
def test_span_infilling_is_t5_format_and_invertible(seed):
    text = "the screen was cracked on arrival and the box was soaked with water when it came"
    src, tgt = make_span_infilling(text, random.Random(seed), noise_density=0.3, mean_span_length=2)
    n_spans = src.count("<extra_id_")
    assert n_spans >= 1 and tgt.split()[-1] == f"<extra_id_{n_spans}>"  # closing sentinel
    assert [w for w in tgt.split() if w.startswith("<")] == sentinel_tokens(n_spans + 1)
    assert _restore(src, tgt) == text
    mask = random_spans_mask(len(text.split()), random.Random(seed), 0.3, 2)
    assert sum(mask) == round(0.3 * len(text.split()))
    assert make_span_infilling("single", random.Random(0)) is None


def test_length_grouping_covers_everything_once_and_reduces_padding():
    rng = random.Random(0)
    lengths = [rng.randint(5, 200) for _ in range(400)]
    order = list(range(400))
    rng.shuffle(order)
    batches = length_grouped_batches(order, lengths, 16, 10, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(400))
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # longest batch first
    padded = lambda bs: sum(len(b) * max(lengths[i] for i in b) for b in bs)  # noqa: E731
    plain = [order[i : i + 16] for i in range(0, 400, 16)]
    assert padded(batches) < 0.75 * padded(plain)


def test_batch_sampler_tags_epoch_and_shards_under_ddp():
    data = list(range(50))
    sampler = EpochRandomSampler(data, seed=3)
    bs = EpochBatchSampler(sampler, 8, lengths=[i % 7 for i in data], group_size=2)
    sampler.set_epoch(4)
    batches = list(bs)
    assert len(batches) == len(bs) == 7 and all(e == 4 for b in batches for e, _ in b)
    assert sorted(i for b in batches for _, i in b) == data
    sampler.set_epoch(5)
    assert [i for b in bs for _, i in b] != [i for b in batches for _, i in b]
    # what Lightning does under DDP: the same batch sampler around a DistributedSampler
    shards = []
    for rank in range(2):
        dist = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=0)
        dist.set_epoch(2)
        got = [x for b in EpochBatchSampler(dist, 8, lengths=[1] * 50) for x in b]
        assert {e for e, _ in got} == {2}
        shards.append({i for _, i in got})
    assert not (shards[0] & shards[1]) and shards[0] | shards[1] == set(data)


def test_collator_pads_dynamically_and_masks_labels(bert_tok):
    assert label_strip_id(bert_tok) == bert_tok.cls_token_id
    items = [
        {"id": "a", "task": "coarse", "source": "C: short", "target": "damaged item"},
        {"id": "b", "task": "granular", "source": "G: a much longer text about the item that broke", "target": "x"},
    ]
    batch = Seq2SeqCollator(bert_tok, 64, 16)(items)
    longest = max(len(bert_tok(x["source"])["input_ids"]) for x in items)
    assert batch["input_ids"].shape == (2, longest)  # padded to the batch, not to max_source_length
    assert batch["labels"][0, 0] != bert_tok.cls_token_id  # decoder start is added by the model
    ends = [row[row != -100][-1].item() for row in batch["labels"]]
    assert ends == [bert_tok.sep_token_id] * 2 and (batch["labels"][1] == -100).any()
    assert batch["tasks"] == ["coarse", "granular"] and batch["ids"] == ["a", "b"]
    capped = Seq2SeqCollator(bert_tok, 4, 2)(items)
    assert capped["input_ids"].shape[1] == 4 and capped["labels"].shape[1] <= 2


def test_eval_collator_holds_both_levels_of_each_feedback(bert_tok):
    recs = records(3)
    batch = FeedbackEvalCollator(bert_tok, 64, 16, PREFIXES)(recs)
    assert batch["levels"] == ["coarse"] * 3 + ["granular"] * 3
    assert batch["annotated"][0] == recs[0].coarse and batch["annotated"][3] == recs[0].granular
    assert batch["sources"][4] == PREFIXES["granular"] + recs[1].text and batch["input_ids"].shape[0] == 6


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_datamodule_task_info_and_loaders(tmp_path, bert_tok):
    rows = [{"id": r.id, "text": r.text, "coarse": r.coarse, "granular": r.granular, **r.extra} for r in records(6)]
    train = _write(tmp_path / "train.jsonl", rows[:4])
    test = _write(tmp_path / "test.jsonl", rows[4:])
    dm = MultilevelIssuesDataModule(
        train_path=str(train),
        dev_path=str(test),
        test_path=str(test),
        batch_size=4,
        span_infilling_weight=0.5,
        num_sentinels=5,
    )
    dm.validate()
    info = dm.task_info()
    assert info["prefixes"] == {"coarse": PREFIXES["coarse"], "granular": PREFIXES["granular"]}
    assert info["sentinel_tokens"] == sentinel_tokens(5) and info["labels"] == ["damaged item", "smell issue"]
    dm.connect(tokenizer=bert_tok)
    train_batches = list(dm.train_dataloader())
    assert sum(len(b["ids"]) for b in train_batches) == 4 * 2 + 2
    test_batches = list(dm.test_dataloader())
    assert sorted(i for b in test_batches for i in b["ids"]) == ["fb-4", "fb-5"]
    assert [r["id"] for b in dm.predict_dataloader() for r in [{"id": i} for i in b["ids"]]] == ["fb-4", "fb-5"]


def test_bad_feedback_file_fails_before_training(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "1", "text": "ok", "coarse": ["a"], "granular": ["b"]}\n{"id": "2", "text": "x", "coarse": "a"}\n'
    )
    with pytest.raises(DataValidationError, match="bad.jsonl:2"):
        MultilevelIssuesDataModule(path=str(bad)).validate()


def test_grouping_keys_are_source_token_counts(bert_tok):
    ds = MultiTaskSamples(records(4), PREFIXES)
    lengths = ds.lengths(bert_tok)
    assert lengths == [len(bert_tok(ds[i]["source"])["input_ids"]) for i in range(len(ds))]
    assert ds.lengths(bert_tok) is lengths  # computed once
