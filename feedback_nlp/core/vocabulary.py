"""Names that data, models, metrics and serving must agree on, defined once.

Why: the issue levels, their task prefixes and the safety label names were each spelled out in
several files; a model trained with one spelling and served with another silently mislabels.
Everything here comes from the papers (000 §3.1-3.2, 001 §3).
"""

from __future__ import annotations

ISSUE_LEVELS = ("coarse", "granular")  # 000 §3.1: L-Coarse and L-Granular issues
AUX_TASKS = ("summarization", "span_infilling", "classification")  # 000 §3.3 auxiliary tasks
TASK_PREFIXES = {  # 000 §3.2: one seq2seq model, task by prefix
    "coarse": "identify high-level issues: ",
    "granular": "identify fine-grain issues: ",
    "summarization": "summarize: ",
    "span_infilling": "fill in the spans: ",
    "classification": "classify: ",
}
ISSUE_SEPARATOR = ", "  # issues of one level, joined in the target text
SAFETY_LABELS = ("not_product_safety", "product_safety")  # 001 §3: label 0 / label 1
# the served tasks and the record kind each reads (core/records.py decodes it): the task
# modules, the serving registry and the exports all take it from here
TASK_RECORD_KINDS = {
    "product_safety": "claim",  # 001
    "multilevel_issues": "feedback",  # 000
    "mcml_bert": "feedback",  # 000 §5.1 baseline
    "seacat": "transcript",  # 002 §2
    "universal_model": "question",  # 002 §3
}
