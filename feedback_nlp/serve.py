"""`serve` console script and `python -m feedback_nlp.serve`: see serving/cli.py (feedback_nlp.serving.cli)."""

from feedback_nlp.serving.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
