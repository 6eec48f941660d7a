"""Benchmark: how fast every `feedback-nlp` subcommand answers `--help` (goal: under 2 s).

    python -m bench.cli_help [--repeats 5]

Runs the installed console script (`.venv/bin/feedback-nlp`), as a user does, and reports the
best of N wall times per subcommand next to the reference measured in the same run: the bare
interpreter start of the same Python (`python -c pass`), the floor no command can beat. The
ratio shows what the command adds on top of starting Python; help imports no torch, Lightning
or transformers (subcommands import them only when they run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from feedback_nlp.cli.main import COMMANDS

TARGET_S = 2.0


def best_of(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    script = str(Path(sys.executable).parent / "feedback-nlp")
    floor = best_of([sys.executable, "-c", "pass"], a.repeats)
    print(f"reference: python -c pass  {floor * 1000:.0f} ms (best of {a.repeats})")
    print(f"| command | --help (best of {a.repeats}) | ratio to python -c pass | under {TARGET_S:.0f} s |")
    print("|---|---|---|---|")
    worst = 0.0
    for name in ["", *COMMANDS]:
        t = best_of([script, *([name] if name else []), "--help"], a.repeats)
        worst = max(worst, t)
        ok = "yes" if t < TARGET_S else "NO"
        print(f"| feedback-nlp {name} --help | {t * 1000:.0f} ms | {t / floor:.1f}x | {ok} |")
    print(f"slowest: {worst * 1000:.0f} ms ({'meets' if worst < TARGET_S else 'misses'} the {TARGET_S:.0f} s goal)")


if __name__ == "__main__":
    main()
