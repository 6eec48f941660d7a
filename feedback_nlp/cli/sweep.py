"""Local sweeps on Optuna from the same YAML a W&B sweep uses (configs/sweeps/*.yaml).

    feedback-nlp sweep --sweep configs/sweeps/product_safety_ablation.yaml [--trials N] [--out DIR] [key=value ...]

Why: the papers' ablations (001 original / +NN / +NN+PC and beta; 000 shuffling) are grids of
train.py overrides. One definition serves both worlds: `wandb sweep` + `wandb agent` where a
W&B server is reachable, and this command everywhere else: trials are ordinary run directories
(<out>/trials/NNN), the study lives in sqlite (<out>/study.db; run the command again to resume,
a trial interrupted mid-run is retried), a pruner (the sweep's `early_terminate`: hyperband, or
--pruner median) stops trials whose dev metric after a validation is worse than earlier
trials', and <out>/sweep.{md,json} + best_config.yaml are rewritten after every trial.

The command list's fixed arguments (`--config X`, `key=value`) are taken from the YAML's
`command`, so a local trial trains exactly what the agent would; W&B logging is switched off
for local trials unless --wandb is given (WANDB_MODE=offline keeps it server-free).

DDP: rank 0 asks the study for the trial and puts its number and parameters in the environment;
the ranks Lightning starts re-run this command, find them there and train the same trial
without touching the study. Run one trial per command under DDP (--trials 1, repeated).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.config import ConfigError
from feedback_nlp.core.errors import UserError

TRIAL_ENV = "FEEDBACK_NLP_SWEEP_TRIAL"


class TrialFailed(UserError, RuntimeError):
    """train.py stopped a trial with an input or config error: the sweep stops too (all would fail)."""


METHODS = ("grid", "random", "bayes")
# columns of the comparison table when present in a trial's metrics (the papers' headline numbers)
DEFAULT_COLUMNS = (
    "test/recall",
    "test/precision",
    "traffic/volume_model",
    "traffic/volume_model_or_fcc",
    "test/fairness_std",
    "test/coarse/rouge1",
    "test/coarse/simcse_f1",
    "test/granular/rouge1",
    "test/granular/simcse_f1",
    "test/acc",
    "test/main_question/rule2_acc",
    "val/loss",
)


def load_sweep(path: str | Path) -> dict[str, Any]:
    """The W&B sweep definition, checked for what a local sweep needs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep definition not found: {path}")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping")
    for key in ("method", "parameters", "command"):
        if key not in spec:
            raise ConfigError(f"{path}: missing '{key}'")
    if Path(str(spec.get("program", ""))).name == "train.py":  # a local sweep optimises this metric
        spec.setdefault("metric", None)
    if spec["method"] not in METHODS:
        raise ConfigError(f"{path}: method must be one of {', '.join(METHODS)}, got {spec['method']!r}")
    if "metric" in spec and (
        not isinstance(spec["metric"], dict)
        or not spec["metric"].get("name")
        or spec["metric"].get("goal") not in ("minimize", "maximize")
    ):
        raise ConfigError(f"{path}: metric needs a name and goal: minimize | maximize")
    for name, p in (spec["parameters"] or {}).items():
        if not isinstance(p, dict) or not ({"value", "values"} & p.keys() or {"min", "max"} <= p.keys()):
            raise ConfigError(f"{path}: parameters.{name} needs value, values, or min and max")
        if spec["method"] == "grid" and "values" not in p and "value" not in p:  # noqa: SIM102
            raise ConfigError(f"{path}: parameters.{name}: a grid sweep needs values")
    spec.setdefault("name", path.stem)
    return spec


def train_command(spec: dict[str, Any]) -> tuple[str, list[str]]:
    """(--config path, fixed key=value arguments) of the sweep's command, macros dropped."""
    if Path(str(spec.get("program", ""))).name != "train.py":
        raise ConfigError(
            f"sweep '{spec['name']}': program must be train.py for a local sweep, got {spec.get('program')!r}"
        )
    args = [str(a) for a in spec["command"] if not (str(a).startswith("${") and str(a).endswith("}"))]
    if "--config" not in args or args.index("--config") + 1 >= len(args):
        raise ConfigError(f"sweep '{spec['name']}': the command needs --config <experiment yaml>")
    i = args.index("--config")
    config = args[i + 1]
    return config, [a for j, a in enumerate(args) if j not in (i, i + 1) and "=" in a]


def check_trial_config(config: str, fixed: Sequence[str], overrides: Sequence[str], spec: dict[str, Any]) -> None:
    """Compose the config one trial would get (each parameter at its first value): an unknown key
    or a bad value is a ConfigError before anything is created."""
    from feedback_nlp.core.config import load_config

    first = {
        name: grid_space({"parameters": {name: p}})[name][0] if ("values" in p or "value" in p) else p.get("min")
        for name, p in spec["parameters"].items()
    }
    load_config(config, [*fixed, *(override(k, v) for k, v in first.items() if v is not None), *overrides])


def grid_space(spec: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: list(p["values"]) if "values" in p else [p["value"]] for k, p in spec["parameters"].items()}


def suggest(trial: Any, name: str, p: dict[str, Any]) -> Any:
    if "value" in p:
        return trial.suggest_categorical(name, [p["value"]])
    if "values" in p:
        return trial.suggest_categorical(name, list(p["values"]))
    log = "log" in str(p.get("distribution", ""))
    if isinstance(p["min"], int) and isinstance(p["max"], int) and "q" not in p and not log:
        return trial.suggest_int(name, p["min"], p["max"])
    return trial.suggest_float(name, float(p["min"]), float(p["max"]), log=log)


def override(name: str, value: Any) -> str:
    """key=value as train.py reads it back (YAML): the same text W&B's ${args_no_hyphens} gives,
    except that strings YAML would turn into another type stay strings."""
    text = json.dumps(value) if isinstance(value, str) and not isinstance(yaml.safe_load(value), str) else value
    if isinstance(value, float) and not isinstance(yaml.safe_load(repr(value)), float):
        text = repr(value).replace("e", ".0e", 1)  # YAML 1.1 reads 1e-05 as a string, 1.0e-05 as a float
    return f"{name}={'null' if value is None else str(text).lower() if isinstance(value, bool) else text}"


def make_sampler(spec: dict[str, Any], seed: int) -> Any:
    import optuna

    if spec["method"] == "grid":
        return optuna.samplers.GridSampler(grid_space(spec), seed=seed)
    if spec["method"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(kind: str, flipped: bool = False, spec: dict[str, Any] | None = None) -> Any:
    """`auto` follows the sweep's W&B `early_terminate` (absent: no pruning, so an ablation keeps
    every row). `flipped`: the reported values are the negated dev metric (OptunaPruning), so a
    bound on the metric is a lower bound on what the pruner sees."""
    import optuna

    if kind == "auto":
        early = (spec or {}).get("early_terminate") or {}
        if not early:
            return optuna.pruners.NopPruner()
        if early.get("type") == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=int(early.get("min_iter", 1)))
        kind = "median"
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if kind == "none":
        return optuna.pruners.NopPruner()
    for side in ("above", "below"):  # prune as soon as the dev metric passes a bound (sanity limits)
        if kind.startswith(f"{side}:"):
            bound = float(kind.split(":", 1)[1])
            upper = (side == "above") != flipped
            bound = -bound if flipped else bound
            return optuna.pruners.ThresholdPruner(upper=bound) if upper else optuna.pruners.ThresholdPruner(lower=bound)
    raise ConfigError(f"--pruner must be median, none, above:<value> or below:<value>, got {kind!r}")


def run_trial(
    config: str,
    fixed: Sequence[str],
    params: dict[str, Any],
    run_dir: Path,
    prune_monitor: str,
    prune_mode: str,
    extra: Sequence[str],
    wandb: bool,
) -> dict[str, float]:
    from feedback_nlp.cli import train
    from feedback_nlp.training.run_dir import ENV_VAR as RUN_DIR_ENV

    args = [
        "--config",
        config,
        *fixed,
        *extra,
        *(override(k, v) for k, v in params.items()),
        f"output_dir={run_dir}",
        "+callbacks.optuna_pruning.class_path=feedback_nlp.callbacks.optuna_pruning.OptunaPruning",
        f"+callbacks.optuna_pruning.monitor={prune_monitor}",
        f"+callbacks.optuna_pruning.mode={prune_mode}",
    ]
    if not wandb:
        args.append("logger.wandb.enabled=false")
    if not _is_child_rank():
        os.environ.pop(RUN_DIR_ENV, None)  # each trial is its own run dir (the variable is for DDP ranks)
    try:
        return train.main(args)
    except SystemExit as e:  # train.py printed the error (config, data, model) already
        raise TrialFailed(f"trial in {run_dir} stopped: train.py exited with code {e.code}") from None


def _close_wandb_run() -> None:
    """A pruned or failed trial leaves its W&B run open (train.py never reached finish_wandb);
    close it as failed so the next trial starts its own run."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.run.finish(exit_code=1)


def _is_child_rank() -> bool:
    from feedback_nlp.training.run_dir import global_rank

    return global_rank() > 0 or int(os.environ.get("LOCAL_RANK", "0") or 0) > 0


def comparison(study: Any, metric: str, columns: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    """Markdown table + rows: one row per trial, params then metrics; best first, then the rest."""
    import optuna

    rows = []
    for t in study.trials:
        m = t.user_attrs.get("metrics", {})
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                metric: t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
                "metrics": {c: m[c] for c in columns if c in m},
                "run_dir": t.user_attrs.get("run_dir"),
            }
        )
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    rows.sort(key=lambda r: (r[metric] is None, sign * (r[metric] or 0), r["trial"]))
    params = sorted({k for r in rows for k in r["params"]})
    cols = [c for c in columns if c != metric and any(c in r["metrics"] for r in rows)]
    head = ["trial", "state", *params, f"**{metric}**", *cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    for r in rows:
        cells = [
            str(r["trial"]),
            r["state"],
            *(fmt(r["params"].get(p)) for p in params),
            fmt(r[metric]),
            *(fmt(r["metrics"].get(c)) for c in cols),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", rows


def write_report(study: Any, spec: dict[str, Any], out: Path, columns: Sequence[str]) -> str:
    import optuna

    from feedback_nlp.core.io import atomic_write_json, atomic_write_text

    metric = spec["metric"]["name"]
    table, rows = comparison(study, metric, columns)
    title = f"### sweep {spec['name']}: {spec['metric']['goal']} {metric} ({len(rows)} trials)\n\n"
    atomic_write_text(out / "sweep.md", title + table)
    report: dict[str, Any] = {"name": spec["name"], "metric": metric, "goal": spec["metric"]["goal"], "trials": rows}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = study.best_trial
        report["best"] = {
            "trial": best.number,
            "value": best.value,
            "params": best.params,
            "run_dir": best.user_attrs.get("run_dir"),
        }
        cfg = Path(best.user_attrs.get("run_dir", "")) / "config.yaml"
        if cfg.is_file():  # the resolved config of the best trial: `train.py --config best_config.yaml` reruns it
            atomic_write_text(out / "best_config.yaml", cfg.read_text(encoding="utf-8"))
    atomic_write_json(out / "sweep.json", report)
    return title + table


def run_sweep(
    sweep_path: str | Path,
    out: str | Path,
    trials: int,
    overrides: Sequence[str] = (),
    pruner: str = "auto",
    prune_monitor: str = "val/loss",
    prune_mode: str = "min",
    columns: Sequence[str] = DEFAULT_COLUMNS,
    wandb: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    from feedback_nlp.callbacks import optuna_pruning
    from feedback_nlp.cli.main import logs_to_stdout

    logs_to_stdout()  # Optuna's trial log lines are progress, not errors

    spec = load_sweep(sweep_path)
    config, fixed = train_command(spec)
    check_trial_config(config, fixed, overrides, spec)  # a misspelt key stops here: no study.db yet
    out = Path(out)
    if _is_child_rank() and os.environ.get(TRIAL_ENV):  # a DDP rank Lightning started: rank 0's trial
        shared = json.loads(os.environ[TRIAL_ENV])
        run_trial(config, fixed, shared["params"], Path(shared["run_dir"]), prune_monitor, prune_mode, overrides, wandb)
        return {"trial": shared["number"], "rank": "child"}
    out.mkdir(parents=True, exist_ok=True)
    storage = RDBStorage(
        f"sqlite:///{out.resolve() / 'study.db'}",
        heartbeat_interval=60,
        grace_period=180,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
    )
    study = optuna.create_study(
        study_name=spec["name"],
        storage=storage,
        load_if_exists=True,
        direction=spec["metric"]["goal"],
        sampler=make_sampler(spec, seed),
        pruner=make_pruner(pruner, (prune_mode == "min") == (spec["metric"]["goal"] == "maximize"), spec),
    )
    metric = spec["metric"]["name"]

    def objective(trial: Any) -> float:
        params = {name: suggest(trial, name, p) for name, p in spec["parameters"].items()}
        run_dir = out / "trials" / f"{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        os.environ[TRIAL_ENV] = json.dumps({"number": trial.number, "params": params, "run_dir": str(run_dir)})
        optuna_pruning.ACTIVE.update(trial=trial, direction=spec["metric"]["goal"])
        try:
            metrics = run_trial(config, fixed, params, run_dir, prune_monitor, prune_mode, overrides, wandb)
        finally:
            os.environ.pop(TRIAL_ENV, None)
            optuna_pruning.ACTIVE.clear()
            _close_wandb_run()
        trial.set_user_attr("metrics", metrics)
        value = metrics.get(metric)
        if value is None or math.isnan(value):
            raise ConfigError(f"sweep '{spec['name']}': trial {trial.number} has no '{metric}' in its metrics.json")
        return float(value)

    def report(study: Any, trial: Any) -> None:
        print(write_report(study, spec, out, columns), flush=True)

    todo = trials
    if spec["method"] == "grid":  # a resumed grid only runs the points it has not finished
        size = math.prod(len(v) for v in grid_space(spec).values())
        finished = sum(t.state.is_finished() for t in study.trials)
        todo = max(0, min(trials, size - finished))
    if todo:
        study.optimize(objective, n_trials=todo, callbacks=[report], catch=(ConfigError,))
    text = write_report(study, spec, out, columns)
    print(text + f"\nsweep: {out / 'sweep.json'}", flush=True)
    return json.loads((out / "sweep.json").read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = Parser("sweep", __doc__)
    p.add_argument("--sweep", required=True, help="a W&B sweep YAML (configs/sweeps/*.yaml)")
    p.add_argument("--trials", type=int, default=None, help="trials to run now (default: the grid's size, else 10)")
    p.add_argument("--out", default=None, help="study dir (default outputs/sweeps/<name>); rerun to resume")
    p.add_argument(
        "--pruner",
        default="auto",
        help="auto (the sweep's early_terminate; none without) | median | none | above:<v> | below:<v>",
    )
    p.add_argument("--prune-on", default="val/loss", help="dev metric reported after each validation")
    p.add_argument("--prune-mode", default="min", choices=("min", "max"))
    p.add_argument("--columns", default=",".join(DEFAULT_COLUMNS), help="metrics shown in the table")
    p.add_argument("--wandb", action="store_true", help="keep the experiment's W&B logger in trials")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to every trial")
    a = p.parse_args(argv)
    try:
        spec = load_sweep(a.sweep)
        train_command(spec)
        trials = (
            a.trials
            if a.trials is not None
            else (math.prod(len(v) for v in grid_space(spec).values()) if spec["method"] == "grid" else 10)
        )
        out = a.out or str(Path("outputs") / "sweeps" / spec["name"])
        return run_sweep(
            a.sweep,
            out,
            trials,
            a.overrides,
            a.pruner,
            a.prune_on,
            a.prune_mode,
            [c for c in a.columns.split(",") if c],
            a.wandb,
            a.seed,
        )
    except (ConfigError, TrialFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def cli(argv: Sequence[str] | None = None) -> int:
    """`feedback-nlp sweep`: the study's report is on disk, the exit code says success."""
    main(argv)
    return 0
