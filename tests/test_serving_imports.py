"""serving/ and nets/ stand apart from training: importable and usable with Lightning and
torchmetrics blocked (import cycles and the layers are tests/test_architecture.py's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.serving_helpers import safety_export

ROOT = Path(__file__).resolve().parent.parent
BLOCKER = '''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics"):
            raise ImportError(f"blocked: {name}")
        if name.startswith(("feedback_nlp.lightning_modules", "feedback_nlp.datamodules.base",
                            "feedback_nlp.callbacks", "feedback_nlp.core.config")):
            raise ImportError(f"blocked training code: {name}")
        return None
sys.meta_path.insert(0, Block())
'''


def _modules(folder: str) -> list[str]:
    found = sorted(
        f"feedback_nlp.{folder}.{p.stem}" for p in (ROOT / "feedback_nlp" / folder).glob("*.py") if p.stem != "__init__"
    )
    assert found, f"no modules in feedback_nlp/{folder}"
    return found


def test_serving_and_nets_import_and_predict_with_lightning_blocked(tmp_path):
    export = safety_export(tmp_path)
    code = (
        BLOCKER
        + f'''
import importlib, json
for name in {_modules("serving") + _modules("nets")!r}:
    importlib.import_module(name)
from feedback_nlp.serving.registry import load_export
from feedback_nlp.core.records import decode_request
predictor, manifest = load_export({str(export)!r})
rows = predictor.predict(decode_request([{{"text": "the heel broke"}}], manifest["record_kind"]))
assert not any(m.split(".")[0] == "lightning" for m in sys.modules)
print(json.dumps(rows))
'''
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert rows[0]["id"] == "0" and 0.0 <= rows[0]["probability"] <= 1.0


def test_the_blocker_really_blocks():
    out = subprocess.run(
        [sys.executable, "-c", BLOCKER + "import lightning"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "blocked: lightning" in out.stderr
