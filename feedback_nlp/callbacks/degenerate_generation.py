"""Flag degenerate generation per issue level at every validation (and on test); warn or stop.

Why: a collapsed seq2seq model (one generic string for every feedback, or empty or looping
outputs) keeps an ordinary loss, so neither the progress bar nor the loss curve shows it
(issue 26: granular F1 fell to the copy baseline on one seed of three). This callback reads the
(prediction, reference) issue sets the task module generated in the epoch
(`pl_module.generation_log[stage][level]`), measures them (`feedback_nlp/metrics/generation_health.py`) and
logs, per level, `<stage>/<level>/distinct_share`, `top_share`, `length_ratio` and
`degenerate` (1.0 when any limit is crossed), so CSV, W&B and metrics.json carry them. With
`action: stop` a degenerate validation ends training (the best checkpoint so far is kept);
`warn` (default) only warns. Test-time checks never stop anything; they land in metrics.json.
`check_from_step`: validations before this training step are measured and logged but neither
warn nor stop, since a freshly warm-started decoder is degenerate by nature (demo, step 47: 11%
distinct granular outputs, the references 92%) and learns its way out.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from feedback_nlp.core.config import ConfigError
from feedback_nlp.metrics.generation_health import DegenerationLimits, generation_health

ACTIONS = ("warn", "stop")


class DegenerateGeneration(Callback):
    """Per-level health of the generated issue sets at every validation and test; warn or stop.

    Args:
        action: warn (log and warn) or stop (a degenerate validation ends training; the best checkpoint stays).
        min_distinct_ratio: Flag few_distinct when the outputs' distinct share < this x the references'.
        max_top_share_excess: Flag one_dominant when the most frequent output's share exceeds the references' by more.
        min_length_ratio: Flag too_short when mean words per output < this x per reference.
        max_length_ratio: Flag too_long when mean words per output > this x per reference.
        min_outputs: Fewer generated outputs per level than this: nothing to judge.
        check_from_step: Validations before this training step are logged but neither warn nor stop.
    """

    def __init__(
        self,
        action: str = "warn",
        min_distinct_ratio: float = 0.5,
        max_top_share_excess: float = 0.25,
        min_length_ratio: float = 0.5,
        max_length_ratio: float = 2.0,
        min_outputs: int = 8,
        check_from_step: int = 0,
    ):
        if action not in ACTIONS:
            raise ConfigError(f"callbacks.degenerate_generation.action must be one of {ACTIONS}, got {action!r}")
        self.action, self.min_outputs, self.check_from_step = action, min_outputs, check_from_step
        self.limits = DegenerationLimits(min_distinct_ratio, max_top_share_excess, min_length_ratio, max_length_ratio)
        self.events: list[dict[str, Any]] = []  # every flag raised in this run: (stage, step, level, reasons)
        self._warned_empty = False

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        flagged = self._check(trainer, pl_module, "val")
        if flagged and self.action == "stop":
            trainer.should_stop = True

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._check(trainer, pl_module, "test")

    def _check(self, trainer: Any, pl_module: Any, stage: str) -> list[str]:
        """Measure and log every level of `stage`; return the degenerate levels."""
        generated = getattr(pl_module, "generation_log", None)
        if generated is None:  # a task that does not generate (classifiers): nothing to check
            return []
        per_level = _gathered(generated.get(stage, {}))
        if not any(len(v) >= self.min_outputs for v in per_level.values()):
            if stage == "val" and not self._warned_empty:
                self._warned_empty = True
                rank_zero_warn(
                    f"degenerate_generation: fewer than {self.min_outputs} generated dev outputs per level; "
                    "nothing to check (set model.generate_on_validation=true)",
                )
            return []
        flagged = []
        for level, pairs in per_level.items():
            if len(pairs) < self.min_outputs:
                continue
            h = generation_health([p for p, _ in pairs], [a for _, a in pairs])
            reasons = self.limits.reasons(h)
            values = {
                "distinct_share": h.distinct_share,
                "top_share": h.top_share,
                "length_ratio": h.length_ratio,
                "degenerate": float(bool(reasons)),
            }
            for name, value in values.items():
                pl_module.log(f"{stage}/{level}/{name}", value, sync_dist=False)
            if reasons and (stage == "test" or trainer.global_step >= self.check_from_step):
                flagged.append(level)
                event = {"stage": stage, "step": int(trainer.global_step), "level": level, "reasons": reasons}
                self.events.append(event)
                stops = stage == "val" and self.action == "stop"
                rank_zero_warn(
                    f"degenerate generation at {stage} (step {trainer.global_step}), level {level}: "
                    f"{', '.join(reasons)} (distinct {h.distinct_share:.2f} vs references {h.ref_distinct_share:.2f}, "
                    f"most frequent {h.top_share:.2f} vs {h.ref_top_share:.2f}, length x{h.length_ratio:.2f})"
                    + ("; stopping training" if stops else ""),
                )
        return flagged


def _gathered(per_level: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Every rank's pairs under DDP (each rank generated its own shard of the dev set)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return {k: list(v) for k, v in per_level.items()}
    shards: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(shards, {k: list(v) for k, v in per_level.items()})
    out: dict[str, list[Any]] = {}
    for shard in shards:
        for k, v in shard.items():
            out.setdefault(k, []).extend(v)
    return out
