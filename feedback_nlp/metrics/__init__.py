"""Issue-identification metrics of paper 000 §4.3: ROUGE-1/2 F and SimCSE precision/recall/F1.

Pure functions for the math (`simcse_match_count`, `simcse_precision_recall`), thin
torchmetrics wrappers that sync under DDP (`RougeF`, `SimCSEScore`), and the per-level bundle
(`LevelMetrics`) that the seq2seq model and the MCML-BERT baseline share.
"""

from feedback_nlp.core.issue_sets import dedupe_issues, join_issues, parse_issues
from feedback_nlp.metrics.multilevel_issues import LevelMetrics, SentenceEmbedder
from feedback_nlp.metrics.rouge import RougeF
from feedback_nlp.metrics.simcse import (
    SimCSEScore,
    issue_simcse_prf,
    simcse_match_count,
    simcse_match_counts,
    simcse_precision_recall,
    simcse_scores,
)

__all__ = [
    "LevelMetrics",
    "RougeF",
    "SentenceEmbedder",
    "SimCSEScore",
    "dedupe_issues",
    "issue_simcse_prf",
    "join_issues",
    "parse_issues",
    "simcse_match_count",
    "simcse_match_counts",
    "simcse_precision_recall",
    "simcse_scores",
]
