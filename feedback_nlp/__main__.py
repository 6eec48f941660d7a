"""`python -m feedback_nlp ...` is the `feedback-nlp` command."""

from feedback_nlp.cli.main import main

raise SystemExit(main())
