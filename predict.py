"""Thin entry point, same as the `predict` console script: see feedback_nlp/predict.py."""

from feedback_nlp.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
