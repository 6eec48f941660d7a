"""Tiny exports and a real `serve` process for the serving tests.

Why a real process: LitServe runs API servers and inference workers as separate processes;
only a started server shows batching, /health and metrics across them. It listens on a free
loopback port and is stopped (SIGTERM, then its process group) when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Sequence

CLAIMS = [
    "The heel broke off and I fell down the stairs.",
    "too small",
    "a needle cut my finger",
    "the cream gave my child a rash on the skin",
    "the box was damaged",
    "it smells of chemicals",
    "refund please",
    "the cable caught fire",
    "wrong colour",
    "my dog choked on a broken part",
]


def safety_export(folder: Path, onnx: bool = False, threshold: float | None = None) -> Path:
    """A random tiny product-safety model, exported as train.py's callback would; the threshold
    defaults to the midpoint of the two middle probabilities on CLAIMS, so both decisions occur
    and none is a tie that a 1e-7 difference (ONNX vs torch) could flip."""
    import torch

    from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    bert = tiny_bert(folder / "bert", CLAIMS)
    torch.manual_seed(0)
    m = ProductSafetyClassifier(pretrained=bert, max_length=32).eval()
    with torch.no_grad():
        m.head.weight.normal_(0, 2.0)  # spread the probabilities: decisions on both sides
    if threshold is None:
        enc = m.tokenizer(CLAIMS, padding=True, return_tensors="pt")
        with torch.no_grad():
            probs = sorted(m.probabilities(dict(enc)).tolist())
        mid = len(probs) // 2  # between two claims: no claim sits on the threshold
        threshold = (probs[mid - 1] + probs[mid]) / 2
    m.set_threshold(threshold, 0.95, 0.96)
    return export_module(m, folder / "export", onnx=onnx)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None, raw: bytes | None = None, timeout: float = 60) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        text, status = e.read().decode(), e.code
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@contextlib.contextmanager
def running_server(
    export: Path,
    args: Sequence[str] = (),
    log: Path | None = None,
    start_timeout: float = 240,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, list[int]]]:
    """(base url, /health codes seen until the first 200) of a started `serve` process."""
    port = free_port()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "feedback_nlp",
            "serve",
            "--export",
            str(export),
            "--device",
            "cpu",
            "--port",
            str(port),
            *args,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    base, codes = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}: {log.read_text()[-3000:] if log else ''}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    codes.append(r.status)
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:
                codes.append(e.code)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"serve did not become healthy in {start_timeout}s")
        yield base, codes
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the server's own workers, if any outlived it
        proc.wait(timeout=30)
        if log:
            out.close()


def seacat_export(folder: Path, transcripts: Sequence[dict]) -> Path:
    """A random tiny SeaCat (002 §2) over the labels and words of `transcripts`, exported as
    train.py's callback would (tests/test_serving_api.py's recipe)."""
    import torch

    from feedback_nlp.lightning_modules.seacat import SeaCat
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    bert = tiny_bert(folder / "bert", [t["text"] for r in transcripts for t in r["turns"]])
    torch.manual_seed(0)
    labels = sorted({r["label"] for r in transcripts})
    module = SeaCat(labels=labels, pretrained=bert, max_sentences=16, max_tokens=24)
    return export_module(module.eval(), folder / "export")
