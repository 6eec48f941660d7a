"""The argument parser of every `feedback-nlp` subcommand: one `error:` line and exit 2.

Why: argparse prints its usage block before the message, so a pipeline's log shows several
lines per mistake in a different shape than every other error of the tool. Here a bad flag is
`error: <message> (feedback-nlp <command> --help lists the options)` on stderr, nothing else.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    def __init__(self, command: str, description: str | None = None) -> None:
        super().__init__(
            prog=f"feedback-nlp {command}",
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} ({self.prog} --help lists the options)", file=sys.stderr)
        raise SystemExit(2)


def add_bad_input_args(p: argparse.ArgumentParser, what: str, stop: str) -> None:
    """`--on-error stop|skip` and `--rejects FILE`: the same switch for every command that reads
    records from files (predict, score)."""
    p.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        default="stop",
        help=f"bad {what}: {stop} (default) or skip them (reported)",
    )
    p.add_argument("--rejects", default=None, help=f"write skipped {what} (file:line: field: message) here")
