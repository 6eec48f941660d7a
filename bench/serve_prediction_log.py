"""Benchmark: `serve` throughput with the prediction log on vs off, 16 concurrent clients.

    python -m bench.serve_prediction_log                     # safety classifier, packaged MiniLM, CPU
    python -m bench.serve_prediction_log --rounds 3 --seconds 20 --device cuda

The reference is the same server with the log off, at bench/serve.py's best documented
configuration (dynamic batching on: --max-batch-size 16, --batch-timeout 0.01); the client loop
is bench/serve.py's (`drive`: keep-alive connections POSTing in a loop). Off and on alternate
for --rounds rounds in ABBA order (off on, on off, ...) so a drift of the machine's load and any
order effect (a server starting while the last one's processes exit) hit both alike;
the ratio is on / off of the summed records/s. After each logged round the log is read back and
must hold at least every answered record (a check, not a timing). Goal (issue 23): >= 0.9.
On CPU the log's background Parquet writer shares the cores with the model.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from bench.serve import build_export, client_parser, drive, server


def export_for_cost(a: argparse.Namespace, tmp: Path) -> Path:
    return a.export or build_export(tmp)


def append_cost(folder: Path, batch: int, n: int = 2000) -> float:
    """Milliseconds one `append` of a `batch`-record scored batch takes on the request path
    (JSON lines, text hashes, one write), in this process, the background writer running."""
    import time

    from bench.serve import TEXTS
    from feedback_nlp.core.records import TextRecord
    from feedback_nlp.serving.prediction_log import PredictionLog
    from feedback_nlp.serving.protocol import stamp_rows

    log = PredictionLog(folder, "product_safety", rotate_seconds=1.0)
    records = [TextRecord(str(i), TEXTS[i % len(TEXTS)], "en") for i in range(batch)]
    rows = [
        {"id": r.id, "label": "product_safety", "probability": 0.7, "decision": 1, "threshold": 0.5} for r in records
    ]
    stamped = stamp_rows(records, rows, "0123456789abcdef")
    start = time.perf_counter()
    for _ in range(n):
        log.append(records, stamped)
    elapsed = time.perf_counter() - start
    log.close()
    return elapsed / n * 1000


def convert_cost(folder: Path, rows: int = 20000) -> float:
    """Milliseconds of the background writer's work per logged row: a segment of `rows` rows
    turned into Parquet parts (read, parse, write, rename, delete)."""
    import time

    from bench.serve import TEXTS
    from feedback_nlp.core.records import TextRecord
    from feedback_nlp.serving import prediction_log as plog
    from feedback_nlp.serving.protocol import stamp_rows

    loc = plog.locate(folder)
    loc.spool.mkdir(parents=True, exist_ok=True)
    records = [TextRecord(str(i), TEXTS[i % len(TEXTS)], "en") for i in range(rows)]
    scored = [
        {"id": r.id, "label": "product_safety", "probability": 0.7, "decision": 1, "threshold": 0.5} for r in records
    ]
    lines = (
        json.dumps(plog.entry("product_safety", r, row)) for r, row in zip(records, stamp_rows(records, scored, "v"))
    )
    segment = loc.spool / f"seg-{plog.HOST}-{2**22 + 7}-{1:020d}.jsonl"  # no such pid: a dead writer's
    segment.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    plog.convert_segment(loc, segment)
    return (time.perf_counter() - start) / rows * 1000


def main(argv: Sequence[str] | None = None) -> int:
    p = client_parser(__doc__, seconds=15.0)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--log-text", action="store_true", help="log the input text too")
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from feedback_nlp.serving.prediction_log import read_log

    results: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="bench-serve-log-") as tmp:
        export = a.export or build_export(Path(tmp))
        common = ["--device", a.device, "--max-batch-size", str(a.max_batch_size)]
        common += [
            "--batch-timeout",
            str(a.batch_timeout),
            "--batch-size",
            str(a.max_batch_size * a.records_per_request),
        ]
        for r in range(a.rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):  # ABBA: order effects cancel
                log_dir = Path(tmp) / f"log-{r}"
                extra = (
                    (["--prediction-log", str(log_dir)] + (["--log-text"] if a.log_text else []))
                    if mode == "on"
                    else []
                )
                with server(export, [*common, *extra], Path(tmp) / f"serve-{mode}-{r}.log") as port:
                    got = drive(port, a.clients, a.records_per_request, a.seconds, a.warmup)
                if mode == "on":  # the server stopped (SIGTERM): every row is in Parquet now
                    got["logged_rows"] = read_log(log_dir).num_rows
                    answered = got["records_per_s"] * a.seconds  # measured window only; warm-up rows come on top
                    assert got["logged_rows"] >= answered, f"log holds {got['logged_rows']} < {answered:.0f} answered"
                results[mode].append(got)
                print(
                    f"round {r + 1} log {mode:3s}: {got['records_per_s']:8.1f} records/s  p50 {got['p50_ms']:6.1f} ms"
                    f"  p99 {got['p99_ms']:6.1f} ms  errors {got['errors']}"
                    + (f"  logged rows {got['logged_rows']}" if mode == "on" else ""),
                    flush=True,
                )
    off = sum(x["records_per_s"] for x in results["off"])
    on = sum(x["records_per_s"] for x in results["on"])
    ratio = on / off if off else float("nan")
    print(
        f"{a.clients} clients x {a.records_per_request} record(s)/request, {a.rounds} round(s) of {a.seconds:.0f} s, "
        f"device {a.device}, max batch {a.max_batch_size}"
    )
    print(f"prediction log on / off = {ratio:.3f}  (goal >= 0.9)")
    # the same question as CPU cost, measured in this process a moment apart (far less noisy than
    # served throughput on a shared machine): the model's time per record vs the log's
    from bench.serve import in_process

    batch = a.max_batch_size * a.records_per_request
    with tempfile.TemporaryDirectory(prefix="bench-log-cost-") as tmp:
        model = in_process(export_for_cost(a, Path(tmp)), a.device, "fp32", batch, a.seconds, a.warmup)
        model_ms = 1000 / model["records_per_s"]
        cost = append_cost(Path(tmp) / "append", batch)
        conv = convert_cost(Path(tmp) / "convert")
    log_ms = cost / batch + conv
    print(f"request-path cost of the log: {cost:.3f} ms per append of a {batch}-record batch")
    print(f"background writer: {conv * 1000:.1f} us per row (segment -> Parquet part)")
    print(
        f"per record: model {model_ms:.2f} ms (in-process, batch {batch}), log {log_ms:.4f} ms -> "
        f"CPU-cost ratio on / off = {model_ms / (model_ms + log_ms):.4f}"
    )
    if a.json:
        figures = {
            "results": results,
            "ratio": ratio,
            "append_ms": cost,
            "convert_ms_per_row": conv,
            "model_ms": model_ms,
        }
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, **figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
