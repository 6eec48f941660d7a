"""Benchmark: `feedback-nlp score` (Ray Data) vs `feedback-nlp predict` on the same claims, and 1 vs 2 actors.

    python -m bench.batch_scoring                       # 20,000 demo claims, MiniLM safety export, CPU
    python -m bench.batch_scoring --records 2000 --actors 1 2 4
    python -m bench.batch_scoring --num-gpus 1          # where a GPU is lent (predict --device cuda)

Every run is the installed command in its own process, timed from start to exit, as a user runs
it: predict includes its model load; score includes starting its local Ray cluster, the check pass
and one model load per actor. The reference is predict at its best on this machine: run once per
--predict-threads value (OMP_NUM_THREADS; default: the core count), the fastest kept. Printed:
records/s end to end per run, score's own records/s in its scoring pass, the machine's load average
around each run (the machine is shared), the ratio score / predict (goal >= 0.8 on 2 cores, where
Ray's fixed cost shows most) and the scaling from 1 to 2 actors.
The rows are checked too: every id once, and the probabilities of score and predict compared.
Without --export, a product-safety export is built from the packaged all-MiniLM-L6-v2 with a
random head (speed does not depend on the head's values; bench/serve.py builds the same one).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).parent / "feedback-nlp")


def claims(path: Path, n: int, seed: int = 0) -> Path:
    """`n` demo claims (originals, translations and traffic; 10-60 words) as predict reads them."""
    from feedback_nlp.demo_data.product_safety import generate_claims

    rows = generate_claims(random.Random(seed), n=max(1, n // 4) + 1)[:n]
    assert len(rows) == n, f"the demo generator gave {len(rows)} claims, asked for {n}"
    path.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"], "language": r["language"]}) + "\n" for r in rows)
    )
    return path


def timed(args: list[str], env: dict[str, str], log: Path) -> tuple[float, str, tuple[float, float]]:
    """(wall seconds, stdout, (1-min load average before, after)) of one command; fails loudly."""
    before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({proc.returncode}); see {log}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout, (before, os.getloadavg()[0])


def probabilities(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {r["id"]: r["probability"] for r in rows}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--export", default=None, help="an existing product-safety export (default: build one)")
    p.add_argument("--predict-threads", type=int, nargs="+", default=None, help="default: the core count")
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="score runs at the default resources")
    p.add_argument(
        "--no-fixed-share",
        action="store_true",
        help="skip the run of 1 actor at the CPU share each of 2 actors gets (the like-for-like scaling)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per actor (and predict --device cuda)")
    p.add_argument("--workdir", default=None, help="keep inputs, outputs and logs here")
    a = p.parse_args(argv)
    cores = os.cpu_count() or 1
    threads = a.predict_threads or [cores]
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    if a.export:
        export = Path(a.export)
    else:
        from bench.serve import build_export

        export = build_export(work)
    inp = claims(work / "claims.jsonl", a.records)
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    base |= {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "offline"}
    device = ["--device", "cuda"] if a.num_gpus else ["--device", "cpu"]
    print(f"{a.records} claims, {export}, {cores} CPU cores, batch size {a.batch_size}", flush=True)

    results: list[dict[str, Any]] = []
    predicted: dict[str, float] = {}
    for t in threads:
        out = work / f"predict-{t}.jsonl"
        cmd = [CLI, "predict", "--export", str(export), "--input", str(inp), "--output", str(out), *device]
        wall, _, load = timed(
            [*cmd, "--batch-size", str(a.batch_size)], {**base, "OMP_NUM_THREADS": str(t)}, work / f"predict-{t}.log"
        )
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(rows) == a.records
        predicted = probabilities(rows)
        results.append({"run": f"predict, {t} thread(s)", "wall": wall, "rate": a.records / wall, "load": load})
        print(
            f"  {results[-1]['run']}: {wall:.1f} s, {a.records / wall:.1f} records/s "
            f"(load {load[0]:.1f} -> {load[1]:.1f})",
            flush=True,
        )

    from feedback_nlp.operations.batch_outputs import read_output

    share = max(0.25, int((cores - 0.5) / 2 * 4) / 4)  # what each of 2 actors gets by default
    runs = [(n, None) for n in a.actors]
    if not a.no_fixed_share and not a.num_gpus and 2 in a.actors:
        runs.append((1, share))
    for n, cpus in runs:
        name = f"score-{n}" + (f"-{cpus:g}cpu" if cpus else "")
        out = work / name
        cmd = [CLI, "score", "--export", str(export), "--input", str(inp), "--output", str(out), "--overwrite"]
        cmd += ["--actors", str(n), "--batch-size", str(a.batch_size)]
        if cpus:
            cmd += ["--cpus-per-actor", str(cpus)]
        if a.num_gpus:
            cmd += ["--gpus-per-actor", str(a.num_gpus)]
        wall, stdout, load = timed(cmd, base, work / f"{name}.log")
        last = stdout.strip().splitlines()[-1]
        inner = float(re.search(r"([\d.]+) records/s in the scoring pass", last).group(1))  # type: ignore[union-attr]
        given = re.search(r"(\d+) actor\(s\) x ([\d.]+) CPU", last)
        rows = read_output(str(out))
        got = probabilities(rows)
        assert len(rows) == len(got) == a.records and got.keys() == predicted.keys(), "ids differ from predict's"
        diff = max(abs(got[k] - predicted[k]) for k in got)
        run = f"score, {n} actor(s) x {given.group(2) if given else '?'} CPU"
        results.append({"run": run, "wall": wall, "rate": a.records / wall, "inner": inner, "load": load})
        results[-1] |= {"diff": diff, "key": (n, cpus)}
        print(
            f"  {results[-1]['run']}: {wall:.1f} s, {a.records / wall:.1f} records/s end to end, {inner:.1f} in the "
            f"scoring pass (load {load[0]:.1f} -> {load[1]:.1f}); max |probability - predict's| {diff:.2e}",
            flush=True,
        )

    ref = max((r for r in results if r["run"].startswith("predict")), key=lambda r: r["rate"])
    scores = {r["key"]: r for r in results if "key" in r}
    print("\n| run | wall s | records/s end to end | records/s scoring pass | load avg (1 min) before -> after |")
    print("|---|---|---|---|---|")
    for r in results:
        inner = f"{r['inner']:.1f}" if "inner" in r else "-"
        print(
            f"| {r['run']} | {r['wall']:.1f} | {r['rate']:.1f} | {inner} | {r['load'][0]:.1f} -> {r['load'][1]:.1f} |"
        )
    for r in scores.values():
        print(f"ratio {r['run']} / {ref['run']}: {r['rate'] / ref['rate']:.2f} end to end (goal >= 0.8)")
    for one in ((1, None), (1, share)):
        if one in scores and (2, None) in scores:
            s1, s2 = scores[one], scores[(2, None)]
            print(
                f"scaling {s2['run']} / {s1['run']}: {s2['rate'] / s1['rate']:.2f} end to end, "
                f"{s2['inner'] / s1['inner']:.2f} in the scoring pass"
            )
    print(f"files and logs: {work}")


if __name__ == "__main__":
    main()
