"""Thin entry point, same as the `train` console script: see feedback_nlp/train.py."""

from feedback_nlp.train import cli

if __name__ == "__main__":
    raise SystemExit(cli())
