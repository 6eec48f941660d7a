"""What every TaskModule shares (lightning_modules/base.py): train mode at fit start, the optimizer's
parameter groups and its warmup / linear schedule.

Why the train-mode test: `from_pretrained` returns eval-mode models and Lightning keeps module modes
as it finds them, so a pretrained encoder silently trained without dropout until
TaskModule.on_fit_start switched everything to train mode. A frozen SeaCat encoder is the one
intended exception.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier
from feedback_nlp.lightning_modules.seacat import SeaCatNet
from tests.test_product_safety_data import tiny_bert


class ModeProbe(L.Callback):
    """Records the names of the submodules in eval mode at each training batch."""

    def __init__(self) -> None:
        self.eval_modules: list[list[str]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.eval_modules.append([n for n, m in pl_module.named_modules() if not m.training])


def test_pretrained_encoder_trains_with_dropout(tmp_path):
    model = ProductSafetyClassifier(pretrained=tiny_bert(tmp_path / "bert"), max_length=16)
    assert not model.encoder.training  # as from_pretrained leaves it: the case this guards against
    enc = dict(model.tokenizer(["the heel broke off", "too small"], return_tensors="pt", padding=True))
    batch = {**enc, "labels": torch.tensor([1, 0])}
    probe = ModeProbe()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=0,
        logger=False,
        callbacks=[probe],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train_dataloaders=DataLoader([batch, batch], batch_size=None))
    assert probe.eval_modules == [[], []]
    dropouts = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p > 0 for m in dropouts)  # dropout is really there to be switched on


def test_frozen_seacat_encoder_stays_in_eval_mode(tmp_path):
    from feedback_nlp.core.model_factory import load_encoder

    encoder = load_encoder(tiny_bert(tmp_path / "bert"))
    encoder.requires_grad_(False)
    net = SeaCatNet(encoder, n_labels=3, max_sentences=8).train()
    assert not net.encoder.training and net.classifier.training and net.dropout.training


def test_warmup_then_linear_decay_and_per_group_learning_rates(tmp_path):
    """model.optim: transformers' linear schedule (warmup step/W, then (total-step)/(total-W)), per group lr."""
    from types import SimpleNamespace

    from feedback_nlp.core.config import ConfigError
    from feedback_nlp.lightning_modules.seacat import SeaCat

    bert = tiny_bert(tmp_path / "bert")
    model = SeaCat(
        labels=["a", "b"], pretrained=bert, head_lr=1e-2, optim={"lr": 1e-3, "warmup_steps": 2, "scheduler": "linear"}
    )
    assert (model.optim.weight_decay, model.optim.optimizer) == (0.01, "adamw")  # SeaCat's own defaults
    model._trainer = SimpleNamespace(estimated_stepping_batches=10)
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    head = {id(p) for p in opt.param_groups[1]["params"]}
    assert head == {id(p) for n, p in model.net.named_parameters() if not n.startswith("encoder.")}
    seen = []
    for _ in range(11):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    factors = [0.0, 0.5, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0]  # by hand: warmup 2, total 10
    assert [s[0] for s in seen] == pytest.approx([1e-3 * f for f in factors])
    assert [s[1] for s in seen] == pytest.approx([1e-2 * f for f in factors])
    model._trainer = None
    assert isinstance(
        SeaCat(labels=["a", "b"], pretrained=bert, optim={"lr": 1e-3}).configure_optimizers(), torch.optim.AdamW
    )  # constant, no warmup: no scheduler at all
    with pytest.raises(ConfigError, match=r"model.optim.scheduler must be a transformers schedule \(.*cosine"):
        SeaCat(labels=["a", "b"], pretrained=bert, optim={"scheduler": "cosinus"})
    with pytest.raises(ConfigError, match=r"unknown config key 'model.optim.lrr'; did you mean 'model.optim.lr'"):
        SeaCat(labels=["a", "b"], pretrained=bert, optim={"lrr": 1e-3})
    with pytest.raises(ConfigError, match=r"'model.optim.lr' expects float, got str"):
        SeaCat(labels=["a", "b"], pretrained=bert, optim={"lr": "fast"})


class _Line(TaskModule):
    """One linear layer: enough to watch what an optimizer step does to the weights."""

    def __init__(self, optim: dict):
        super().__init__(optim)
        self.lin = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return (self.lin(batch[0]) - 100.0).pow(2).mean()  # far from the target: large gradients


def _one_step(module: TaskModule, tmp_path, **trainer_options) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **trainer_options,
    )
    trainer.fit(module, DataLoader([(torch.ones(4),)], batch_size=1))
    return trainer


@pytest.mark.parametrize("clip", [1e-9, 0.0])
def test_fused_adamw_clips_under_bf16_mixed_precision(clip, tmp_path):
    """Lightning refuses to clip a fused optimizer under AMP; under bf16 TaskModule clips itself.

    The run failed with "AdamW does not allow for gradient clipping" before the fix (seen on an
    H200 with the T5 recipe's settings). Adam's step is ~lr whatever the gradient's size, unless
    the gradient is clipped far below eps (1e-8): then the step shrinks to ~lr * |g| / eps.
    """
    torch.manual_seed(0)
    module = _Line({"optimizer": "adamw", "lr": 1.0, "fused": True})
    before = module.lin.weight.detach().clone()
    trainer = _one_step(module, tmp_path, precision="bf16-mixed", gradient_clip_val=clip)
    assert trainer.optimizers[0].defaults["fused"]  # the fused kernel ran
    step = (module.lin.weight.detach() - before).abs().max().item()
    if clip:
        assert step < 0.2  # clipped to 1e-9: Adam's update ~ lr * 1e-9 / (1e-9 + 1e-8) ~ 0.09
    else:
        assert step == pytest.approx(1.0, abs=0.02)  # unclipped: the full lr-sized Adam step


def test_fp16_mixed_precision_with_clipping_falls_back_to_the_unfused_step(tmp_path):
    """fp16 scales the loss: a fused step would unscale after clipping, so the plain step runs.
    (Lightning gives CPU fp16 no scaler; the CUDA one is built here on CPU.)"""
    from lightning.pytorch.plugins.precision import MixedPrecision

    module = _Line({"optimizer": "adamw", "lr": 1.0, "fused": True})
    scaler = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    trainer = _one_step(module, tmp_path, plugins=[scaler], gradient_clip_val=1.0)
    assert not trainer.optimizers[0].defaults["fused"]
