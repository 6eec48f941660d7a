"""Thin entry point, same as the `export` console script: see feedback_nlp/export.py."""

from feedback_nlp.export import main

if __name__ == "__main__":
    raise SystemExit(main())
