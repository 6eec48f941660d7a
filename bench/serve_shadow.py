"""Benchmark: `serve` throughput with a shadow export vs without, 16 concurrent clients.

    python -m bench.serve_shadow                               # safety classifier, packaged MiniLM, CPU
    python -m bench.serve_shadow --rounds 2 --seconds 20 --device cuda

The reference is the same server without a shadow, at bench/serve.py's best documented
configuration (dynamic batching on: --max-batch-size 16, --batch-timeout 0.01), with the
prediction log on in both arms (a shadow needs it: its rows go only to the log), so the ratio
is the shadow's cost alone. With the shadow: `--export prod=E --export shadow=E' --shadow
shadow`, where E' is a copy of the same export (the same model cost: a candidate of the same
architecture). The client loop is bench/serve.py's (`drive`). Arms alternate for --rounds rounds
in ABBA order; the ratio is with / without of the summed production records/s, next to p50 and
p99 latency. After each shadow round the server's /metrics says how many shadow copies were
scored and how many were dropped at the in-flight bound (serve --shadow-max-inflight).

On CPU the shadow's worker and the production worker share the same cores: every shadow copy
costs as much CPU as the production request, so production throughput falls towards 1/2 of
the reference once the cores are saturated. On a GPU (or a host with idle cores) the shadow
runs beside production; that is where "latency unchanged" can hold.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from bench.serve import build_export, client_parser, drive, server


def shadow_counts(port: int) -> dict[str, float]:
    """feedback_serve_shadow_requests_total by outcome, from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r'^feedback_serve_shadow_requests_total\{outcome="(\w+)"\} (\S+)$', text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = client_parser(__doc__, seconds=15.0)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    results: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="bench-serve-shadow-") as tmp:
        export = a.export or build_export(Path(tmp))
        shadow = Path(tmp) / "shadow-export"
        shutil.copytree(export, shadow)
        common = ["--device", a.device, "--max-batch-size", str(a.max_batch_size)]
        common += [
            "--batch-timeout",
            str(a.batch_timeout),
            "--batch-size",
            str(a.max_batch_size * a.records_per_request),
        ]
        for r in range(a.rounds):
            for mode in ("without", "with") if r % 2 == 0 else ("with", "without"):  # ABBA
                log = ["--prediction-log", str(Path(tmp) / f"log-{mode}-{r}")]
                if mode == "with":
                    first: Any = f"prod={export}"
                    extra = [*log, "--export", f"shadow={shadow}", "--shadow", "shadow"]
                else:
                    first, extra = export, log
                with server(first, [*common, *extra], Path(tmp) / f"serve-{mode}-{r}.log") as port:
                    got = drive(port, a.clients, a.records_per_request, a.seconds, a.warmup)
                    if mode == "with":
                        got["shadow"] = shadow_counts(port)
                results[mode].append(got)
                print(
                    f"round {r + 1} {mode:7s} shadow: {got['records_per_s']:8.1f} records/s"
                    f"  p50 {got['p50_ms']:6.1f} ms  p99 {got['p99_ms']:6.1f} ms  errors {got['errors']}"
                    + (f"  shadow copies {got['shadow']}" if mode == "with" else ""),
                    flush=True,
                )
    without = sum(x["records_per_s"] for x in results["without"])
    with_ = sum(x["records_per_s"] for x in results["with"])
    ratio = with_ / without if without else float("nan")
    p50 = [sum(x["p50_ms"] for x in results[m]) / len(results[m]) for m in ("without", "with")]
    p99 = [sum(x["p99_ms"] for x in results[m]) / len(results[m]) for m in ("without", "with")]
    print(
        f"{a.clients} clients x {a.records_per_request} record(s)/request, {a.rounds} round(s) of {a.seconds:.0f} s, "
        f"device {a.device}, max batch {a.max_batch_size}, prediction log on in both arms"
    )
    print(f"production throughput with / without shadow = {ratio:.3f}")
    print(f"p50 latency {p50[0]:.1f} -> {p50[1]:.1f} ms, p99 {p99[0]:.1f} -> {p99[1]:.1f} ms (without -> with)")
    if a.device == "cpu":
        print(
            f"on CPU both models share the same {os.cpu_count()} core(s): the shadow's work is taken from production's"
        )
    if a.json:
        a.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "results": results, "ratio": ratio})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
