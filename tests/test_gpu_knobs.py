"""GPU knobs, checked on CPU where they can run: gradient checkpointing and torch.compile of the
HF backbones leave a step's loss and gradients unchanged; the FSDP trainer piece wraps the
model's own transformer layers; collators pad to a multiple of 8; DataLoader defaults follow
the device; the translator runs where the job runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from feedback_nlp.callbacks.performance import Performance
from feedback_nlp.training.backbones import hf_backbones, transformer_layer_classes
from tests.tiny_models import tiny_bert

REPO = Path(__file__).resolve().parent.parent


class Wrapper(nn.Module):
    """A task-like module: a BERT backbone under a head, as the task modules hold theirs."""

    def __init__(self, path: str):
        super().__init__()
        from transformers import BertModel

        self.encoder = BertModel.from_pretrained(path, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        self.head = nn.Linear(self.encoder.config.hidden_size, 3)

    def forward(self, ids):
        return self.head(self.encoder(input_ids=ids).last_hidden_state[:, 0])


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("knobs") / "bert", ["the item is broken", "refund my order please"])


def _loss_and_grads(model, ids, labels):
    model.train()
    model.zero_grad()
    loss = nn.functional.cross_entropy(model(ids), labels)
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _pair(bert):
    torch.manual_seed(0)
    return Wrapper(bert), Wrapper(bert)


def test_gradient_checkpointing_keeps_the_step(bert):
    plain, ckpt = _pair(bert)
    ckpt.load_state_dict(plain.state_dict())
    Performance(gradient_checkpointing=True).setup(None, ckpt, "fit")

    def on(m):
        return (
            m.is_activation_checkpointing if hasattr(m, "is_activation_checkpointing") else m.is_gradient_checkpointing
        )

    assert on(ckpt.encoder) and not on(plain.encoder)
    ids, labels = torch.randint(5, 100, (4, 12)), torch.tensor([0, 1, 2, 1])
    (l1, g1), (l2, g2) = _loss_and_grads(plain, ids, labels), _loss_and_grads(ckpt, ids, labels)
    assert l1 == pytest.approx(l2, abs=1e-6) and g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], atol=1e-6, rtol=1e-5)


def test_compile_keeps_names_and_numbers(bert):
    plain, compiled = _pair(bert)
    compiled.load_state_dict(plain.state_dict())
    Performance(compile=True, compile_backend="eager").setup(None, compiled, "fit")  # inductor needs a C compiler
    assert compiled.encoder._compiled_call_impl is not None and plain.encoder._compiled_call_impl is None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints stay loadable either way
    ids, labels = torch.randint(5, 100, (2, 9)), torch.tensor([2, 0])
    (l1, _), (l2, _) = _loss_and_grads(plain, ids, labels), _loss_and_grads(compiled, ids, labels)
    assert l1 == pytest.approx(l2, abs=1e-6)


def test_performance_refuses_a_model_without_backbone():
    with pytest.raises(ValueError, match="no Hugging Face backbone"):
        Performance(compile=True).setup(None, nn.Linear(2, 2), "fit")


def test_fsdp_piece_wraps_the_models_transformer_layers(bert, tmp_path):
    from lightning.pytorch.strategies import FSDPStrategy
    from omegaconf import OmegaConf
    from transformers.models.bert.modeling_bert import BertLayer

    from feedback_nlp.core.config import load_config
    from feedback_nlp.training.strategy import build_strategy

    exp = tmp_path / "fsdp.yaml"
    exp.write_text("defaults: [trainer/gpu_8x_fsdp, logger/csv, callbacks/default]\nexperiment: fsdp\n")
    cfg = load_config(exp, [], root=REPO / "configs")
    model = Wrapper(bert)
    assert [type(m).__name__ for m in hf_backbones(model)] == ["BertModel"]
    assert transformer_layer_classes(model) == {BertLayer}
    strategy = build_strategy(OmegaConf.to_container(cfg.trainer.strategy), model)
    assert isinstance(strategy, FSDPStrategy)
    policy = strategy.kwargs["auto_wrap_policy"]
    assert set(policy._module_classes) == {BertLayer}
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    assert build_strategy("ddp", model) == "ddp"
    with pytest.raises(ValueError, match="no Hugging Face transformer layers"):
        build_strategy({"name": "fsdp"}, nn.Linear(2, 2))


def test_collators_pad_to_a_multiple_of_8(bert):
    from transformers import AutoTokenizer

    from feedback_nlp.datamodules.multilevel_issues import MultiLabelCollator, Seq2SeqCollator
    from feedback_nlp.datamodules.seacat import TranscriptFeatures, collate_features

    tok = AutoTokenizer.from_pretrained(bert)
    texts = ["the item is broken", "refund my order please and thanks for the box"]
    plain = Seq2SeqCollator(tok, 64, 16).encode(texts, ["broken item", "refund"])
    padded = Seq2SeqCollator(tok, 64, 16, pad_to_multiple_of=8).encode(texts, ["broken item", "refund"])
    assert plain["input_ids"].shape[1] % 8 and padded["input_ids"].shape[1] % 8 == 0
    assert padded["labels"].shape[1] % 8 == 0
    n = plain["input_ids"].shape[1]  # the real tokens are unchanged, the rest is padding
    assert torch.equal(padded["input_ids"][:, :n], plain["input_ids"])
    assert int(padded["attention_mask"].sum()) == int(plain["attention_mask"].sum())
    assert (
        MultiLabelCollator(tok, 64, ["a"], pad_to_multiple_of=8)(
            [type("F", (), {"text": t, "coarse": [], "id": i})() for i, t in enumerate(texts)]
        )["input_ids"].shape[1]
        % 8
        == 0
    )
    feats = [
        TranscriptFeatures(
            id="t",
            sentences=texts,
            speakers=["customer", "agent"],
            positions=[0, 1],
            label=None,
            agent_first=1,
            main_question=None,
        )
    ]
    assert collate_features(feats, tok, 32, pad_to_multiple_of=8)["input_ids"].shape[1] % 8 == 0


def test_dataloader_defaults_follow_the_device():
    from feedback_nlp.datamodules.seacat import SeaCatDataModule

    dm = SeaCatDataModule(path="unused.jsonl", num_workers=None)
    cpu = dm.loader_options()
    assert (cpu["num_workers"], cpu["pin_memory"], cpu["persistent_workers"]) == (0, False, False)

    class CUDAAccelerator:  # what Lightning's accelerator is called on a GPU job
        pass

    dm.trainer = type("T", (), {"accelerator": CUDAAccelerator(), "num_devices": 1})()
    gpu = dm.loader_options()
    assert gpu["pin_memory"] is True and gpu["persistent_workers"] == (gpu["num_workers"] > 0)
    assert gpu["num_workers"] == min(4, max(1, len(__import__("os").sched_getaffinity(0))) - 1)
    dm.num_workers, dm.pin_memory = 2, False  # explicit settings win
    assert (dm.loader_options()["num_workers"], dm.loader_options()["pin_memory"]) == (2, False)


def test_translator_runs_on_the_job_device(monkeypatch):
    from feedback_nlp.datamodules.parallel_corpus import HFTranslator, job_device

    assert job_device() == ("cuda:0" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setenv("LOCAL_RANK", "5")
    assert job_device() == "cuda:5" and HFTranslator("x").device == "cuda:5"
    assert HFTranslator("x", device="cpu").device == "cpu"
