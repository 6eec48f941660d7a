"""Loading an export: the task registry, weight hashes, and ONNX parity through onnxruntime."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from feedback_nlp.core.records import TextRecord
from feedback_nlp.serving.manifest import ExportError
from feedback_nlp.serving.registry import load_export, preflight
from feedback_nlp.serving.runtime import RuntimeOptionError, RuntimeOptions, resolve
from tests.serving_helpers import CLAIMS, safety_export


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return safety_export(tmp_path_factory.mktemp("reg"), onnx=True)


def _copy(export, tmp_path):
    import shutil

    return shutil.copytree(export, tmp_path / "copy")


def _edit_manifest(folder, **changes):
    m = json.loads((folder / "manifest.json").read_text())
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))


def test_unknown_task_is_refused_with_the_known_ones(export, tmp_path):
    d = _copy(export, tmp_path)
    _edit_manifest(d, task="os.system")
    with pytest.raises(ExportError, match=r"task 'os.system'.*known: mcml_bert, multilevel_issues, product_safety"):
        load_export(d)


def test_the_manifests_predictor_string_is_never_imported(export, tmp_path):
    d = _copy(export, tmp_path)
    _edit_manifest(d, predictor="tests.no_such_module_would_run_code.load_predictor")
    predictor, manifest = load_export(d)
    assert type(predictor).__name__ == "ProductSafetyPredictor"
    assert "tests.no_such_module_would_run_code" not in sys.modules


def test_record_kind_must_match_the_task(export, tmp_path):
    d = _copy(export, tmp_path)
    _edit_manifest(d, record_kind="transcript")
    with pytest.raises(ExportError, match="reads 'claim' records"):
        load_export(d)


@pytest.mark.parametrize("target", ["classifier_head.safetensors", "model.safetensors", "safety.onnx"])
def test_tampered_weights_are_refused_naming_the_file(export, tmp_path, target):
    d = _copy(export, tmp_path)
    data = bytearray((d / target).read_bytes())
    data[-3] ^= 0xFF
    (d / target).write_bytes(bytes(data))
    with pytest.raises(ExportError, match=rf"{target}: sha256 differs"):
        load_export(d)
    with pytest.raises(ExportError, match=target):
        preflight(d, RuntimeOptions())


def test_an_extra_or_missing_weight_file_is_refused(export, tmp_path):
    d = _copy(export, tmp_path)
    (d / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(ExportError, match="extra.safetensors: not in the manifest"):
        load_export(d)
    (d / "extra.safetensors").unlink()
    (d / "safety.onnx").unlink()
    with pytest.raises(ExportError, match="safety.onnx: missing"):
        load_export(d)


def test_onnx_file_matches_torch_on_a_new_batch_shape(export):
    """The saved graph, run by onnxruntime through the ONNX backend, on 7 records (the export
    traced 3 and checked 5): same probabilities and decisions as the torch backend."""
    records = [TextRecord(str(i), t) for i, t in enumerate(CLAIMS[:7])]
    torch_rows = load_export(export, RuntimeOptions(backend="torch"))[0].predict(records)
    onnx_pred = load_export(export, RuntimeOptions(backend="onnx"))[0]
    assert onnx_pred.graph is None and onnx_pred.onnx is not None  # really onnxruntime
    onnx_rows = onnx_pred.predict(records)
    np.testing.assert_allclose([r["probability"] for r in onnx_rows], [r["probability"] for r in torch_rows], atol=1e-5)
    assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
    assert len({r["label"] for r in torch_rows}) == 2  # both decisions occur


def test_onnx_backend_needs_a_graph_in_the_export(tmp_path):
    d = safety_export(tmp_path)
    with pytest.raises(ExportError, match="export --onnx"):
        preflight(d, RuntimeOptions(backend="onnx"))


def test_runtime_flags_are_checked():
    with pytest.raises(RuntimeOptionError, match="--device"):
        resolve("tpu")
    with pytest.raises(RuntimeOptionError, match="fp16 needs --device cuda"):
        resolve("cpu", "fp16")
    with pytest.raises(RuntimeOptionError, match="--backend onnx runs the exported fp32 graph"):
        resolve("cpu", "bf16", "onnx")
    assert resolve("auto").device in ("cpu", "cuda")


def test_bf16_torch_backend_stays_close_to_fp32(export):
    records = [TextRecord(str(i), t) for i, t in enumerate(CLAIMS)]
    fp32 = load_export(export, RuntimeOptions())[0].predict(records)
    bf16 = load_export(export, RuntimeOptions(dtype="bf16"))[0].predict(records)
    np.testing.assert_allclose([r["probability"] for r in bf16], [r["probability"] for r in fp32], atol=0.03)


def test_universal_model_is_registered_lazily(tmp_path):
    """The repository predictor comes from another branch: until it is installed, an export of
    it is refused before any worker starts, with the module named."""
    import importlib.util

    (tmp_path / "manifest.json").write_text(
        json.dumps({"task": "universal_model", "record_kind": "question", "model_version": "x", "files_sha256": {}})
    )
    if importlib.util.find_spec("feedback_nlp.universal_model.repository_predictor") is None:
        with pytest.raises(ExportError, match="repository_predictor.load_predictor"):
            preflight(tmp_path, RuntimeOptions())
    with pytest.raises(ExportError, match="record_kind 'claim'"):
        (tmp_path / "manifest.json").write_text(
            json.dumps({"task": "universal_model", "record_kind": "claim", "model_version": "x", "files_sha256": {}})
        )
        preflight(tmp_path, RuntimeOptions())


@pytest.mark.parametrize(
    "change, args, message",
    [
        ("tamper", [], "sha256 differs"),
        ("task", [], "does not know"),
        (None, ["--port", "80"], "--port must be in 1024..65535"),
        (None, ["--max-batch-size", "0"], "--max-batch-size must be >= 1"),
        (None, ["--batch-timeout", "5", "--timeout", "1"], "need 0 <= --batch-timeout < --timeout"),
        (
            None,
            ["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"],
            "--device",
        ),
    ],
)
def test_serve_refuses_before_any_worker_starts(export, tmp_path, capsys, change, args, message):
    from feedback_nlp.cli import serve as cli

    d = _copy(export, tmp_path)
    if change == "tamper":
        (d / "classifier_head.safetensors").write_bytes(b"0" + (d / "classifier_head.safetensors").read_bytes()[1:])
    elif change == "task":
        _edit_manifest(d, task="evil")
    assert cli.main(["--export", str(d), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
