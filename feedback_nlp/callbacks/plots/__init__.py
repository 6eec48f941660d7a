"""The papers' figures, drawn from what the task modules already compute (see the task files).

`PaperPlots` is one callback for every task: it reads the arrays a module exposes after test
(product safety: `test_arrays`; SeaCat: `example_rows()`; multi-level issues: the logged test
metrics) and the dev scores after each validation, so the modules themselves draw nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback


class PaperPlots(Callback):
    """The papers' figures of the finished run (PNG in the run dir, and to W&B when it logs).

    Args:
        run_dir: The run directory (set by the train command, not in configs).
        seacat_transcripts: Transcripts drawn with their sentence weights (002 Fig. 4 view).
    """

    def __init__(self, run_dir: str, seacat_transcripts: int = 6):
        self.run_dir = Path(run_dir)
        self.seacat_transcripts = seacat_transcripts
        self._dev: list[dict[str, Any]] = []  # product safety: one snapshot per validation
        self.written: dict[str, Path] = {}

    # --- product safety: dev scores at the validation whose checkpoint test will use -------------
    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or getattr(pl_module, "task", None) != "product_safety":
            return
        probs, labels = pl_module.validation_scores()  # every rank: the gather is collective
        ckpt = trainer.checkpoint_callback
        monitor = getattr(ckpt, "monitor", None)
        value = trainer.callback_metrics.get(monitor) if monitor else None
        self._dev.append(
            {
                "probs": probs,
                "labels": labels,
                "threshold": float(pl_module.threshold),
                "monitor": None if value is None else float(value),
            }
        )
        # keep what test can use: the best validation by the monitored metric (the best checkpoint's) and
        # the latest (save_last / no monitor); a long run does not hold every dev set's scores
        scored = [d for d in self._dev if d["monitor"] is not None]
        if scored:
            pick = min if getattr(ckpt, "mode", "min") == "min" else max
            best = pick(scored, key=lambda d: d["monitor"])
            self._dev = [d for d in self._dev if d is best or d is self._dev[-1]]
        else:
            self._dev = self._dev[-1:]

    def _dev_for(self, trainer: Any, threshold: float) -> tuple[Any, Any, float] | None:
        """The validation whose threshold the tested (best) checkpoint carries."""
        same = [d for d in self._dev if d["threshold"] == threshold] or self._dev[-1:]
        if not same:
            return None
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best is not None and len(same) > 1:
            same.sort(key=lambda d: abs((d["monitor"] if d["monitor"] is not None else np.inf) - float(best)))
        d = same[0]
        return d["probs"], d["labels"], d["threshold"]

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        task = getattr(pl_module, "task", None)
        if not trainer.is_global_zero:
            return
        from feedback_nlp.callbacks.plots.figures import log_wandb, publish

        figs: dict[str, Any] = {}
        if task == "product_safety" and getattr(pl_module, "test_arrays", None):
            from feedback_nlp.callbacks.plots import product_safety

            test = pl_module.test_arrays
            figs = product_safety.figures(
                self._dev_for(trainer, float(test["threshold"])), test, pl_module.labels, pl_module.target_recall
            )
        elif task == "seacat" and hasattr(pl_module, "example_rows"):
            from feedback_nlp.callbacks.plots.seacat import heatmap_figure

            rows = pl_module.example_rows()
            if rows:
                figs = {"attention_heatmap": heatmap_figure(rows, self.seacat_transcripts)}
        elif task == "multilevel_issues":
            from feedback_nlp.callbacks.plots.multilevel_issues import level_figure, level_table

            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
            table = level_table(metrics)
            if table:
                figs = {"level_metrics": level_figure(table)}
                from feedback_nlp.training.logging_setup import wandb_run

                if wandb_run(trainer) is not None:
                    import wandb  # only with a W&B run: a CSV-only job never imports it

                    cols = sorted({m for row in table.values() for m in row})
                    log_wandb(
                        trainer,
                        {
                            f"plots/{task}/level_metrics_table": wandb.Table(
                                columns=["level", *cols],
                                data=[[lvl, *(row.get(c) for c in cols)] for lvl, row in table.items()],
                            )
                        },
                    )
        if figs:
            self.written.update(publish(trainer, self.run_dir, figs, f"plots/{task}"))
