"""`python train.py ...` is `feedback-nlp train ...`: the design card's entry point (feedback_nlp/cli/train.py)."""

import sys

from feedback_nlp.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
