"""Unit behaviour the end-to-end runs cannot pin down: MCML-BERT's label sets (threshold and
order), the per-task seq2seq losses against HF's own loss, and frozen embeddings staying frozen."""

from __future__ import annotations

import pytest
import torch

from feedback_nlp.lightning_modules.mcml_bert import predicted_label_sets
from feedback_nlp.lightning_modules.seq2seq_backbone import seq2seq_loss
from tests.test_multilevel_e2e import tiny_t5
from tests.tiny_models import tiny_bert

LABELS = ["size issue", "quality issue", "late delivery", "missing parts issue"]
TEXTS = ["the box was opened and the cable is missing", "size issue, quality issue", "late delivery of my order"]


def test_label_sets_threshold_is_inclusive_and_most_probable_first():
    probs = torch.tensor(
        [
            [0.2, 0.9, 0.5, 0.6],  # three pass (0.5 included), ordered 0.9, 0.6, 0.5
            [0.1, 0.2, 0.3, 0.45],  # none pass -> the top label alone
            [0.49, 0.51, 0.0, 1.0],
        ]
    )
    assert predicted_label_sets(probs, LABELS) == [
        ["quality issue", "missing parts issue", "late delivery"],
        ["missing parts issue"],
        ["missing parts issue", "quality issue"],
    ]
    assert predicted_label_sets(probs, LABELS, at_least_one=False)[1] == []
    assert predicted_label_sets(probs, LABELS, threshold=0.95) == [
        ["quality issue"],
        ["missing parts issue"],
        ["missing parts issue"],
    ]
    assert predicted_label_sets(probs, LABELS, threshold=0.95, at_least_one=False) == [[], [], ["missing parts issue"]]
    assert predicted_label_sets(probs, LABELS, threshold=0.0)[1] == [
        "missing parts issue",
        "late delivery",
        "quality issue",
        "size issue",
    ]
    assert predicted_label_sets(torch.zeros(0, 4), LABELS) == []


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    return tiny_t5(tmp_path_factory.mktemp("t5"), TEXTS)


def batch(tokenizer, sources, targets):
    enc = tokenizer(sources, padding=True, return_tensors="pt")
    labels = tokenizer(targets, padding=True, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    return enc["input_ids"], enc["attention_mask"], labels


def test_per_row_loss_sums_match_hf_loss_row_by_row(t5_dir):
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    targets = ["quality issue", "late delivery, missing parts issue, size issue", "size issue"]
    ids, mask, labels = batch(tok, TEXTS, targets)
    assert len({int((row != -100).sum()) for row in labels}) > 1  # rows of different lengths
    with torch.no_grad():
        mean, row_sum, row_count = seq2seq_loss(model, ids, mask, labels)
        # reference: HF's token-averaged loss of each row alone, and of the whole batch
        per_row = [
            float(model(input_ids=ids[i : i + 1], attention_mask=mask[i : i + 1], labels=labels[i : i + 1]).loss)
            for i in range(len(TEXTS))
        ]
        whole = float(model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    counts = [int((row != -100).sum()) for row in labels]
    assert row_count.tolist() == counts
    torch.testing.assert_close(row_sum, torch.tensor([v * c for v, c in zip(per_row, counts)]), rtol=1e-4, atol=1e-4)
    assert float(mean) == pytest.approx(whole, rel=1e-4)


def test_module_logs_one_loss_per_task_weighted_by_tokens(t5_dir):
    from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule

    module = MultiLevelIssuesModule(pretrained=t5_dir, optim={"fused": False}).eval()
    logged: dict[str, float] = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))  # no Trainer needed
    targets = ["quality issue", "late delivery, missing parts issue", "size issue, late delivery, missing parts issue"]
    ids, mask, labels = batch(module.tokenizer, TEXTS, targets)
    tasks = ["coarse", "span_infilling", "coarse"]
    with torch.no_grad():
        module.training_step({"input_ids": ids, "attention_mask": mask, "labels": labels, "tasks": tasks}, 0)
        hf = [
            float(module.model(input_ids=ids[i : i + 1], attention_mask=mask[i : i + 1], labels=labels[i : i + 1]).loss)
            for i in range(3)
        ]
    counts = [int((row != -100).sum()) for row in labels]
    assert counts[0] != counts[2]  # a token-weighted and a row-averaged loss differ
    coarse = (hf[0] * counts[0] + hf[2] * counts[2]) / (counts[0] + counts[2])  # token-weighted, not a row mean
    assert logged["train/coarse/loss"] == pytest.approx(coarse, rel=1e-4)
    assert logged["train/span_infilling/loss"] == pytest.approx(hf[1], rel=1e-4)
    assert logged["train/loss"] == pytest.approx(sum(h * c for h, c in zip(hf, counts)) / sum(counts), rel=1e-4)


@pytest.mark.parametrize("arch", ["t5", "encoder-decoder"])
def test_freeze_embeddings_keeps_them_fixed_through_an_optimizer_step(t5_dir, tmp_path, arch):
    from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule

    pretrained = t5_dir if arch == "t5" else tiny_bert(tmp_path / "bert", TEXTS)
    module = MultiLevelIssuesModule(pretrained=pretrained, freeze_embeddings=True, optim={"fused": False, "lr": 1e-2})
    model = module.model
    embeddings = [model.get_input_embeddings().weight, model.get_encoder().get_input_embeddings().weight]
    if arch == "encoder-decoder":
        embeddings.append(model.decoder.get_input_embeddings().weight)
    assert all(not p.requires_grad for p in embeddings)
    frozen_ids = {id(p) for p in embeddings}
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not frozen_ids & in_optimizer
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    module.train()
    ids, mask, labels = batch(module.tokenizer, TEXTS, ["quality issue", "late delivery", "size issue"])
    loss, _, _ = module(ids, mask, labels)
    loss.backward()
    optimizer.step()
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    frozen_names = {n for n, p in model.named_parameters() if id(p) in frozen_ids}
    assert frozen_names and not changed & frozen_names
    assert changed  # the rest of the model did learn
    unfrozen = MultiLevelIssuesModule(pretrained=pretrained, optim={"fused": False})
    assert unfrozen.model.get_input_embeddings().weight.requires_grad
