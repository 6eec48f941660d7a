"""Pick the decision threshold for a target dev recall after every validation (001 §4.2).

Why: the first business requirement is to miss as few safety cases as possible, so the
operating point is "the highest threshold that still reaches 95% recall on dev" rather than
0.5. Done after each validation, the threshold stored with each checkpoint belongs to that
checkpoint's weights, so test and predict on the best checkpoint use the matching threshold.

The module must expose `validation_scores() -> (probs, labels)` and
`set_threshold(threshold, target_recall, dev_recall)`.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from feedback_nlp.metrics.product_safety import threshold_at_recall


class RecallThreshold(Callback):
    """After each validation, the highest threshold whose dev recall reaches `target_recall`.

    Args:
        target_recall: Dev recall the decision threshold must reach, in (0, 1] (001 §4.2: 0.95).
    """

    def __init__(self, target_recall: float = 0.95):
        if not 0.0 < target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        self.target_recall = target_recall

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        probs, labels = pl_module.validation_scores()
        choice = threshold_at_recall(probs, labels, self.target_recall, fallback=float(pl_module.threshold))
        if not choice.reached:
            rank_zero_warn(f"RecallThreshold: the dev set has no positives; keeping threshold {choice.threshold:.4f}")
        pl_module.set_threshold(choice.threshold, self.target_recall, choice.recall)
        logs = {"val/threshold": choice.threshold, "val/target_recall": self.target_recall}
        if choice.recall is not None and choice.precision is not None:  # reached: both measured
            logs.update({"val/recall_at_threshold": choice.recall, "val/precision_at_threshold": choice.precision})
        pl_module.log_dict(logs, sync_dist=True)
