"""export.py: the checkpoint ModelCheckpoint recorded as best, --onnx, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from feedback_nlp.cli import export as export_cli
from tests.serving_helpers import CLAIMS

CB_KEY = (
    "ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
    "'train_time_interval': None}"
)


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier
    from tests.tiny_models import tiny_bert

    bert = tiny_bert(tmp_path_factory.mktemp("bert") / "bert", CLAIMS)
    return ProductSafetyClassifier(pretrained=bert, max_length=16)


def _ckpt(module, path, step, bias, best_path, hparams=None):
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state["head.bias"] = torch.tensor(bias)
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": hparams or dict(module.hparams),
            "global_step": step,
            "epoch": step // 10,
            "pytorch-lightning_version": "2.6.6",
            "task": "product_safety",
            "callbacks": {
                CB_KEY: {"monitor": "val/loss", "best_model_path": best_path, "best_model_score": torch.tensor(0.1)}
            }
            if best_path is not None
            else {},
        },
        path,
    )


def _run_dir(tmp_path, module, hparams=None):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(
        "model:\n  class_path: feedback_nlp.lightning_modules.product_safety.ProductSafetyClassifier\n"
    )
    ck = run / "checkpoints"
    # recorded best: epoch 10 (written where the run used to live); file-name sort would pick epoch 9
    _ckpt(module, ck / "best-epoch=9-step=90.ckpt", 90, [0.0, 2.0], "/old/place/best-epoch=9-step=90.ckpt", hparams)
    _ckpt(
        module, ck / "best-epoch=10-step=110.ckpt", 110, [0.0, 1.0], "/old/place/best-epoch=10-step=110.ckpt", hparams
    )
    _ckpt(module, ck / "last.ckpt", 120, [0.0, 3.0], "/old/place/best-epoch=10-step=110.ckpt", hparams)
    return run


def test_best_is_the_recorded_one_not_the_last_by_name(module, tmp_path):
    run = _run_dir(tmp_path, module)
    assert sorted((run / "checkpoints").glob("best*.ckpt"))[-1].name == "best-epoch=9-step=90.ckpt"  # the old rule
    assert export_cli.best_checkpoint(run).name == "best-epoch=10-step=110.ckpt"


def test_export_writes_the_recorded_best_with_onnx(module, tmp_path, capsys):
    from safetensors.torch import load_file

    run = _run_dir(tmp_path, module)
    assert export_cli.main(["--run-dir", str(run), "--onnx"]) == 0, capsys.readouterr().err
    head = load_file(str(run / "export" / "classifier_head.safetensors"))
    assert head["bias"].tolist() == [0.0, 1.0]
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    files = set(manifest["files_sha256"])  # every file but the manifest and the model card
    assert {"classifier_head.safetensors", "model.safetensors", "safety.onnx", "classifier.json"} <= files
    assert {"tokenizer.json", "config.json"} <= files and not files & {"manifest.json", "README.md"}
    assert manifest["onnx"]["files"]["safety.onnx"] < 1e-4 and "predictor" not in manifest


def test_no_recorded_best_or_a_missing_file_is_a_clear_error(module, tmp_path, capsys):
    run = _run_dir(tmp_path, module)
    (run / "checkpoints" / "best-epoch=10-step=110.ckpt").unlink()
    assert export_cli.main(["--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "recorded best checkpoint best-epoch=10-step=110.ckpt" in err and "Traceback" not in err
    for p in (run / "checkpoints").glob("*.ckpt"):
        _ckpt(module, p, 5, [0.0, 0.0], None)
    assert export_cli.main(["--run-dir", str(run)]) == 2
    assert "record no best model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--run-dir", "/no/such/run"], "no such directory"),
        ([], "give --run-dir, or --checkpoint with --config"),
        (["--checkpoint", "x.ckpt"], "give --run-dir, or --checkpoint with --config"),
    ],
)
def test_argument_errors(argv, message, capsys):
    assert export_cli.main(argv) == 2 and message in capsys.readouterr().err


def test_an_unavailable_model_is_a_message_not_a_traceback(module, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = _run_dir(tmp_path, module, hparams={**dict(module.hparams), "pretrained": "no-org/no-such-model"})
    assert export_cli.main(["--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no-org/no-such-model" in err and "HF_HUB_OFFLINE" in err and "Traceback" not in err
    assert not (run / "export").exists()


def test_a_truncated_checkpoint_is_a_message(module, tmp_path, capsys):
    run = _run_dir(tmp_path, module)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    assert export_cli.main(["--run-dir", str(run)]) == 2
    assert "last.ckpt is unreadable" in capsys.readouterr().err


def test_task_modules_declare_their_contract(module):
    from feedback_nlp.lightning_modules.base import TaskContractError, TaskModule

    c = module.contract()
    assert (c.task, c.record_kind, c.tokenizer) == ("product_safety", "claim", module.tokenizer)

    class NoExporter(TaskModule):
        task = "mcml_bert"

        def __init__(self):
            super().__init__()
            self.tokenizer = object()

    with pytest.raises(TaskContractError, match="declares no exporter"):
        NoExporter().contract()

    class NoTokenizer(NoExporter):
        def __init__(self):
            TaskModule.__init__(self)

        def export_for_serving(self, out_dir):
            return {}

    with pytest.raises(TaskContractError, match="declares no tokenizer"):
        NoTokenizer().contract()

    class UnknownTask(NoExporter):
        task = "tweets"

    with pytest.raises(TaskContractError, match="task = 'tweets' is not a served task"):
        UnknownTask().contract()
    assert NoTokenizer().record_kind == "feedback"  # from the task, declared once (core/vocabulary.py)
