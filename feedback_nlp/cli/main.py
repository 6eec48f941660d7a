"""`feedback-nlp`: one command, one subcommand per job.

Why one command: `export`, `train`, `serve`, `predict` and `sweep` are generic names on a user's
PATH (`export` is even a shell builtin), and a single entry keeps the help, the exit codes and
the error format in one place. Subcommands are imported only when run, so `--help` answers
without loading torch or Lightning.

Exit codes: 0 success, 2 bad input or arguments (one `error:` line on stderr), never a traceback
for input a user can fix.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

# name -> (module, function taking argv and returning the exit code, one-line summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("feedback_nlp.cli.train", "cli", "train, test and predict one experiment from a config"),
    "predict": ("feedback_nlp.cli.predict", "main", "score a JSONL file with an export (any task)"),
    "score": ("feedback_nlp.cli.score", "main", "batch-score files or folders on Ray Data (local or a cluster)"),
    "export": ("feedback_nlp.cli.export", "main", "write a serving export from a run directory"),
    "serve": ("feedback_nlp.cli.serve", "main", "serve an export over HTTP (LitServe)"),
    "sweep": ("feedback_nlp.cli.sweep", "cli", "run a W&B sweep YAML locally on Optuna"),
    "repo": ("feedback_nlp.cli.repo", "cli", "question repository: evaluate, export, add, delete, stats"),
    "monitor": ("feedback_nlp.cli.monitor", "main", "KPIs per model version, window and language (prediction log)"),
    "compare": ("feedback_nlp.cli.compare", "main", "candidate vs production exports on one frozen evaluation set"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()]
    return (
        "usage: feedback-nlp <command> [options]\n\n"
        "commands:\n" + "\n".join(lines) + "\n\n"
        "`feedback-nlp <command> --help` lists a command's options; `feedback-nlp train\n"
        "--config FILE --list-keys` lists every config key of an experiment (repo: see the\n"
        "comments of configs/experiment/universal_model_demo.yaml).\n"
    )


def stderr_for_errors_only() -> None:
    """stderr carries errors only, so a pipeline can tell a failed step from a chatty one:
    warnings and library log lines go to stdout, and progress bars are drawn only on a terminal."""
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers / hub loading bars
        os.environ.setdefault("TQDM_DISABLE", "1")  # every other tqdm bar

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), file=sys.stdout)

    warnings.showwarning = show
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import transformers.utils.logging  # its handler (weight load reports) is made on first use: make it now

    transformers.utils.logging.get_logger()
    logs_to_stdout()


def logs_to_stdout() -> None:
    """Point every stderr log handler that libraries installed (Lightning adds its own on import)
    at stdout; call again after importing such a library."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                handler.setStream(sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0 if args else 2
    if args[0] == "--version":
        from feedback_nlp import __version__

        print(f"feedback-nlp {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (commands: {', '.join(COMMANDS)})"
        print(f"error: unknown command '{name}'{hint}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[name]
    if argv is None and not {"-h", "--help"} & set(args):  # a program run (not in-process, not help)
        stderr_for_errors_only()
    from feedback_nlp.core.errors import UserError

    try:
        code = getattr(importlib.import_module(module), function)(args[1:])
    except UserError as e:  # a subcommand that did not answer it itself
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
