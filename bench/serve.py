"""Benchmark: `serve` under concurrent loopback clients vs the predictor in-process, batching on vs off.

    python bench/serve.py                                   # safety classifier, packaged MiniLM, CPU
    python bench/serve.py --device cuda --dtype bf16        # where a GPU is lent
    python bench/serve.py --export DIR --clients 16 --seconds 20

Three measurements on the same records, in this order, each for --seconds after a warm-up:
- `in-process`: the export's predictor called directly with batches of --clients records (what a
  batch job would do with the same model; the reference the server is compared to);
- `served, batching on`: `serve --max-batch-size --batch-timeout`, --clients threads on
  keep-alive connections, each POSTing --records-per-request records at a time, in a loop;
- `served, batching off`: the same with --max-batch-size 1;
- `in-process, batch 1`: the predictor one request at a time: the model's own batching gain
  (batch --clients vs batch 1) is the ceiling of ratio (b) on this device.
Prints records/s, p50/p95/p99 request latency, and the ratios (a) served / in-process and
(b) batching on / off. Goals (issue 11, safety classifier on CPU): (a) >= 0.8 at 16 clients,
(b) >= 2. Without --export, a product-safety export is built from the packaged
all-MiniLM-L6-v2 with a random head (the speed does not depend on the head's values).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Sequence

TEXTS = [
    "The heel broke off and I fell down the stairs, my ankle is still swollen.",
    "The jacket is too small, I would like to exchange it for a larger size.",
    "After one day the cream gave my daughter a red itchy rash all over her arms.",
    "Delivery was late and the box was damaged but the item works fine.",
    "The charger got very hot and started to smell of burning plastic.",
    "Die Farbe entspricht nicht dem Bild, ich möchte mein Geld zurück.",
    "A sharp metal edge inside the toy cut my son's finger.",
    "Where is my refund? I sent the parcel back two weeks ago.",
]


def build_export(folder: Path) -> Path:
    import torch

    from feedback_nlp.core.model_factory import PACKAGED_MINILM
    from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier
    from feedback_nlp.training.export import export_module

    torch.manual_seed(0)
    module = ProductSafetyClassifier(pretrained=PACKAGED_MINILM, max_length=128).eval()
    return export_module(module, folder / "export")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(export: Path, args: Sequence[str], log: Path) -> Iterator[int]:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedback_nlp", "serve", "--export", str(export), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 600
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")
                with contextlib.suppress(Exception):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                        if r.status == 200:
                            break
                time.sleep(0.2)
            yield port
        finally:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def percentiles(latencies: list[float]) -> dict[str, float]:
    import numpy as np

    if not latencies:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    p = np.percentile(np.asarray(latencies) * 1000, [50, 95, 99])
    return {"p50_ms": float(p[0]), "p95_ms": float(p[1]), "p99_ms": float(p[2])}


def drive(port: int, clients: int, per_request: int, seconds: float, warmup: float) -> dict[str, Any]:
    """`clients` threads, each on its own keep-alive connection, POSTing until the time is up."""
    stop_at = time.monotonic() + warmup + seconds
    measure_from = time.monotonic() + warmup
    lock, latencies, counts, errors = threading.Lock(), [], [0], [0]

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = 0
        while time.monotonic() < stop_at:
            body = json.dumps(
                [{"id": f"{k}-{i}-{j}", "text": TEXTS[(k + i + j) % len(TEXTS)]} for j in range(per_request)]
            )
            t0 = time.monotonic()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            t1 = time.monotonic()
            ok = resp.status == 200 and len(json.loads(data)) == per_request
            if t0 >= measure_from:
                with lock:
                    if ok:
                        latencies.append(t1 - t0)
                        counts[0] += per_request
                    else:
                        errors[0] += 1
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "records_per_s": counts[0] / seconds,
        "requests": len(latencies),
        "errors": errors[0],
        **percentiles(latencies),
    }


def in_process(export: Path, device: str, dtype: str, batch: int, seconds: float, warmup: float) -> dict[str, Any]:
    from feedback_nlp.core.records import TextRecord
    from feedback_nlp.serving.registry import load_export
    from feedback_nlp.serving.runtime import resolve

    predictor, _ = load_export(export, resolve(device, dtype, "torch", max(batch, 1)))
    records = [TextRecord(str(i), TEXTS[i % len(TEXTS)]) for i in range(batch)]
    end_warm = time.monotonic() + warmup
    while time.monotonic() < end_warm:
        predictor.predict(records)
    n, latencies, start = 0, [], time.monotonic()
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        predictor.predict(records)
        latencies.append(time.monotonic() - t0)
        n += len(records)
    return {
        "records_per_s": n / (time.monotonic() - start),
        "requests": len(latencies),
        "errors": 0,
        **percentiles(latencies),
    }


def client_parser(doc: str | None, seconds: float = 20.0) -> argparse.ArgumentParser:
    """The flags every serving benchmark shares: export, client load, server batching, output."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, help="an export folder (default: build the packaged-MiniLM safety model)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--records-per-request", type=int, default=1)
    p.add_argument("--seconds", type=float, default=seconds)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--batch-timeout", type=float, default=0.01)
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = client_parser(__doc__)
    p.add_argument("--dtype", default="fp32")
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        export = a.export or build_export(Path(tmp))
        common = [
            "--device",
            a.device,
            "--dtype",
            a.dtype,
            "--batch-size",
            str(max(a.max_batch_size, 1) * a.records_per_request),
        ]
        results: dict[str, Any] = {
            "in-process": in_process(export, a.device, a.dtype, a.clients * a.records_per_request, a.seconds, a.warmup),
            # the model's own batching gain: the ceiling of ratio (b)
            "in-process, batch 1": in_process(export, a.device, a.dtype, a.records_per_request, a.seconds, a.warmup),
        }
        for name, batch in (("served, batching on", a.max_batch_size), ("served, batching off", 1)):
            with server(
                export,
                [*common, "--max-batch-size", str(batch), "--batch-timeout", str(a.batch_timeout)],
                Path(tmp) / f"serve-{batch}.log",
            ) as port:
                results[name] = drive(port, a.clients, a.records_per_request, a.seconds, a.warmup)
    print(
        f"{a.clients} clients x {a.records_per_request} record(s)/request, {a.seconds:.0f} s each, "
        f"device {a.device} {a.dtype}, max batch {a.max_batch_size}, batch timeout {a.batch_timeout}s"
    )
    print(f"{'':22s} {'records/s':>10s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for name, r in results.items():
        print(
            f"{name:22s} {r['records_per_s']:10.1f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['errors']:7d}"
        )
    on, off, ref = (results[k]["records_per_s"] for k in ("served, batching on", "served, batching off", "in-process"))
    ratios = {
        "served_vs_in_process": on / ref if ref else float("nan"),
        "batching_on_vs_off": on / off if off else float("nan"),
    }
    print(f"(a) served / in-process = {ratios['served_vs_in_process']:.2f}  (goal >= 0.8)")
    print(f"(b) batching on / off   = {ratios['batching_on_vs_off']:.2f}  (goal >= 2)")
    single = results["in-process, batch 1"]["records_per_s"]
    print(
        f"    model alone, batch {a.clients * a.records_per_request} / batch {a.records_per_request} = "
        f"{ref / single:.2f}  (the most batching can give on this device)"
    )
    if a.json:
        a.json.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(a).items()}, "results": results, "ratios": ratios}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
