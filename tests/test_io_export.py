"""Atomic writes keep the old file or directory on failure; exports refuse folders that are not
exports and weights that do not match their manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from feedback_nlp.core import io as io_mod
from feedback_nlp.core.io import atomic_directory, atomic_write_json, atomic_write_jsonl, atomic_write_text
from feedback_nlp.serving.manifest import ExportError, model_version, read_manifest, verify_export
from feedback_nlp.serving.registry import load_export
from feedback_nlp.training.export import export_module, update_metrics

LOADED: list[Path] = []


def load_predictor_for_tests(export_dir: Path):  # what a crafted manifest's `predictor` string names
    LOADED.append(export_dir)
    return ("toy predictor", export_dir)


class ToyModule:
    """The export protocol of a task module, without Lightning: a declared contract (a known
    task, so loading reaches the hash check), weights in safetensors + fields."""

    def contract(self):
        from types import SimpleNamespace

        return SimpleNamespace(task="product_safety", record_kind="claim")

    def export_for_serving(self, out: Path) -> dict:
        from safetensors.torch import save_file

        save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(out / "model.safetensors"))
        (out / "sub").mkdir()
        save_file({"b": torch.ones(2)}, str(out / "sub" / "head.safetensors"))
        (out / "config.json").write_text("{}")
        (out / "settings.json").write_text('{"threshold": 0.5}')
        return {"threshold": 0.5}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_text_mode_and_content(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "b.txt", "héllo")
    assert p.read_text(encoding="utf-8") == "héllo"
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    atomic_write_json(tmp_path / "m.json", {"b": 1, "a": "ü"})
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == '{\n  "a": "ü",\n  "b": 1\n}\n'
    atomic_write_jsonl(tmp_path / "r.jsonl", [{"x": 1}, {"x": 2}])
    assert (tmp_path / "r.jsonl").read_text() == '{"x": 1}\n{"x": 2}\n'


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "metrics.json", "old")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(io_mod.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new, half written")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path):
    out = tmp_path / "export"
    with atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_directory(out) as tmp:
            (tmp / "b.txt").write_text("2")
            raise RuntimeError("crash mid-export")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and leftovers(tmp_path) == []
    with atomic_directory(out) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt"] and leftovers(tmp_path) == []


def test_atomic_directory_restores_the_old_dir_if_the_final_rename_fails(tmp_path, monkeypatch):
    out = tmp_path / "export"
    with atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("1")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.endswith(".tmp"):  # the new directory's rename into place
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_directory(out) as tmp:
            (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and leftovers(tmp_path) == []


@pytest.fixture
def export(tmp_path):
    return export_module(ToyModule(), tmp_path / "export", config={"seed": 0}, metrics={"val/f1": 0.5})


def test_manifest_hashes_every_file_but_itself_and_the_card(export):
    m = read_manifest(export)
    names = sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file())
    assert "settings.json" in names and "model.safetensors" in names and "sub/head.safetensors" in names
    want = {
        name: hashlib.sha256((export / name).read_bytes()).hexdigest()
        for name in names
        if name not in ("manifest.json", "README.md")
    }
    assert m["files_sha256"] == want
    assert m["model_version"] == model_version(want) and len(m["model_version"]) == 16
    assert (m["task"], m["record_kind"], m["threshold"], m["config"]) == ("product_safety", "claim", 0.5, {"seed": 0})
    assert "predictor" not in m  # the loader comes from the server's registry, never from the manifest
    card = (export / "README.md").read_text()
    assert m["model_version"] in card and "| val/f1 | 0.5000 |" in card
    update_metrics(export, {"test/f1": 0.25})
    m2 = read_manifest(export)
    assert (
        m2["metrics"] == {"val/f1": 0.5, "test/f1": 0.25}
        and "| test/f1 | 0.2500 |" in (export / "README.md").read_text()
    )
    verify_export(export, m2)  # untouched weights pass


def test_read_manifest_on_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ExportError, match=f"^{tmp_path / 'run'} is not an export: no manifest.json$"):
        read_manifest(tmp_path / "run")
    with pytest.raises(ExportError, match="missing: no such export folder"):
        load_export(tmp_path / "missing")


@pytest.mark.parametrize(
    "tamper,detail",
    [
        ("flip_byte", "model.safetensors: sha256 differs from the manifest"),
        ("truncate", "model.safetensors: sha256 differs from the manifest"),
        ("extra_file", "adapter.safetensors: not in the manifest"),
        ("remove_file", "sub/head.safetensors: missing"),
        ("edit_settings", "settings.json: sha256 differs from the manifest"),
    ],
)
def test_verify_export_rejects_tampered_exports(export, tamper, detail):
    weights = export / "model.safetensors"
    if tamper == "flip_byte":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
    elif tamper == "truncate":
        weights.write_bytes(weights.read_bytes()[:-4])
    elif tamper == "edit_settings":
        (export / "settings.json").write_text('{"threshold": 0.999999}')
    elif tamper == "extra_file":
        (export / "adapter.safetensors").write_bytes(b"extra")
    else:
        (export / "sub" / "head.safetensors").unlink()
    manifest = read_manifest(export)
    with pytest.raises(ExportError, match=f"files do not match the manifest .*: {detail}$"):
        verify_export(export, manifest)
    with pytest.raises(ExportError, match=f"files do not match the manifest .*: {detail}$"):
        load_export(export)  # refused before any predictor is built


def test_a_manifest_cannot_choose_the_code_that_loads_it(export):
    """A crafted manifest naming an import string and an unknown task is refused; nothing it
    names is imported or called."""
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["task"], manifest["predictor"] = "toy", f"{__name__}.load_predictor_for_tests"
    (export / "manifest.json").write_text(json.dumps(manifest))
    LOADED.clear()
    with pytest.raises(ExportError, match="manifest names task 'toy', which this server does not know"):
        load_export(export)
    assert LOADED == []
