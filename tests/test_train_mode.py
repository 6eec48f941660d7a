"""Fine-tuning runs with dropout on: every submodule is in train mode at the first training step.

Why a test: `from_pretrained` returns eval-mode models and Lightning keeps module modes as it
finds them, so a pretrained encoder silently trained without dropout until TaskModule.on_fit_start
switched everything to train mode. A frozen SeaCat encoder is the one intended exception.
"""
from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from lightning_modules.product_safety import ProductSafetyClassifier
from lightning_modules.seacat import SeaCatNet
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
    trainer = L.Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, logger=False, callbacks=[probe],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, train_dataloaders=DataLoader([batch, batch], batch_size=None))
    assert probe.eval_modules == [[], []]
    dropouts = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p > 0 for m in dropouts)  # dropout is really there to be switched on


def test_frozen_seacat_encoder_stays_in_eval_mode(tmp_path):
    from common.model_factory import load_encoder
    encoder = load_encoder(tiny_bert(tmp_path / "bert"))
    encoder.requires_grad_(False)
    net = SeaCatNet(encoder, n_labels=3, max_sentences=8).train()
    assert not net.encoder.training and net.classifier.training and net.dropout.training
