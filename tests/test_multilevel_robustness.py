"""Issue 26: a degenerate-generation detector per level, checkpoint selection on the task's own
dev metric (and an export that is that checkpoint), the recipe's loss options, and the seed sweep
that reports mean / std / min per metric. Tiny random T5 models, a few steps each."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from feedback_nlp.core.io import atomic_write_jsonl
from feedback_nlp.demo_data.multilevel_issues import generate_feedback
from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule
from feedback_nlp.metrics.generation_health import DegenerationLimits, generation_health
from tests.test_multilevel_e2e import CONFIG, run_train, tiny_t5

FORCED_WORD = "item"


# --- the measurements, by hand ------------------------------------------------------------------
def test_generation_health_by_hand():
    predicted = [["Box soaked", "screen cracked"], ["screen cracked", "box  soaked"], ["late"], []]
    annotated = [["a"], ["b c"], ["a"], ["d e f"]]
    h = generation_health(predicted, annotated)
    # outputs as sets: {box soaked|screen cracked} x2, {late}, {} -> 3 distinct of 4, top 2 of 4
    assert (h.n, h.distinct_share, h.top_share) == (4, 3 / 4, 2 / 4)
    # references: {a} x2, {b c}, {d e f} -> 3 distinct, top 2
    assert (h.ref_distinct_share, h.ref_top_share) == (3 / 4, 2 / 4)
    assert h.mean_words == (4 + 4 + 1 + 0) / 4 and h.ref_mean_words == (1 + 2 + 1 + 3) / 4
    assert h.length_ratio == pytest.approx((9 / 4) / (7 / 4))
    assert DegenerationLimits().reasons(h) == []


def test_each_limit_flags_its_own_failure():
    refs = [[f"issue {i} here"] for i in range(10)]  # 10 distinct, 3 words each
    limits = DegenerationLimits()
    one = generation_health([["laptop general"]] * 10, refs)
    assert one.distinct_share == 0.1 and one.top_share == 1.0
    assert limits.reasons(one) == ["few_distinct", "one_dominant"]
    empty = generation_health([[f"x{i}"] for i in range(10)], refs)  # distinct but one word vs three
    assert limits.reasons(empty) == ["too_short"]
    loop = generation_health([[f"x{i} " + "y " * 8] for i in range(10)], refs)
    assert limits.reasons(loop) == ["too_long"]
    # a closed label set: 2 labels for 10 feedback is healthy when the references have 2 too
    coarse_refs = [["damaged item"], ["late delivery"]] * 5
    assert limits.reasons(generation_health(coarse_refs, coarse_refs)) == []
    with pytest.raises(ValueError, match="no generated outputs"):
        generation_health([], [])


# --- a run with the detector ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robust_data")
    rows = generate_feedback(random.Random(0), 40)
    texts = [r["text"] for r in rows] + [" ".join(r["coarse"] + r["granular"]) for r in rows]
    model_dir = tiny_t5(tmp / "tiny_t5", texts + ["identify high-level issues: identify fine-grain issues:"])
    return {
        "tmp": tmp,
        "train": atomic_write_jsonl(tmp / "train.jsonl", rows[:30]),
        "test": atomic_write_jsonl(tmp / "test.jsonl", rows[30:]),
        "model": model_dir,
    }


def tiny_args(data: dict[str, Any], out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        CONFIG,
        f"model.pretrained={data['model']}",
        "model.architecture=auto",
        "model.encoder_layers=null",
        "model.decoder_layers=null",
        "model.optim.lr=0.001",
        "model.generate_on_validation=true",
        "data.path=null",
        f"data.train_path={data['train']}",
        f"data.test_path={data['test']}",
        "data.dev_fraction=0.4",
        "data.batch_size=8",
        "model.max_source_length=48",
        "model.max_target_length=12",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.val_check_interval=1.0",
        "trainer.enable_progress_bar=false",
        "callbacks.degenerate_generation.check_from_step=0",
        "run_predict=false",
        f"output_dir={out}",
        *extra,
    ]


class OneStringModule(MultiLevelIssuesModule):
    """A real network forced to emit one string: a fixed bias on the LM head's output puts one
    token far ahead of every other at every step, so every feedback gets "item item item ..."."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        token = self.tokenizer.convert_tokens_to_ids(FORCED_WORD)
        forced = torch.full((len(self.tokenizer),), -1e4)
        forced[token] = 1e4
        self.model.get_output_embeddings().register_forward_hook(lambda m, i, out: out + forced.to(out))


class OracleModule(MultiLevelIssuesModule):
    """A healthy generator: it writes each feedback's own annotated issues."""

    def _eval_step(self, stage: str, batch: dict[str, Any], metrics: Any, generate: bool) -> None:
        self._batch = batch
        super()._eval_step(stage, batch, metrics, generate)

    def generate_issue_sets(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[str]]:
        return [list(a) for a in self._batch["annotated"]]


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_one_string_model_is_flagged_per_level_logged_and_warned(data):
    out = data["tmp"] / "one_string"
    with pytest.warns(UserWarning, match="degenerate generation at val .* level granular: few_distinct, one_dominant"):
        metrics = run_train(tiny_args(data, out, f"model.class_path={__name__}.OneStringModule"))
    table = [json.loads(x) for x in (out / "generations" / "val_epoch000.jsonl").read_text().splitlines()]
    assert table and all(r["prediction"].startswith("item item") for r in table)
    for stage in ("val", "test"):
        for level in ("coarse", "granular"):
            assert metrics[f"{stage}/{level}/degenerate"] == 1.0
            assert metrics[f"{stage}/{level}/top_share"] == 1.0
            assert metrics[f"{stage}/{level}/distinct_share"] < 0.2
    logged = [r for r in csv_rows(out) if r.get("val/granular/degenerate")]
    assert logged and float(logged[-1]["val/granular/degenerate"]) == 1.0  # in the CSV log (and W&B)
    assert json.loads((out / "metrics.json").read_text())["test/granular/degenerate"] == 1.0


def test_healthy_generator_raises_no_flag(data, recwarn):
    out = data["tmp"] / "oracle"
    metrics = run_train(tiny_args(data, out, f"model.class_path={__name__}.OracleModule"))
    for stage in ("val", "test"):
        for level in ("coarse", "granular"):
            assert metrics[f"{stage}/{level}/degenerate"] == 0.0
            assert metrics[f"{stage}/{level}/length_ratio"] == pytest.approx(1.0)
        assert metrics[f"{stage}/selection_score"] == pytest.approx(1.0)  # SimCSE F1 of the gold itself
    assert not [w for w in recwarn if "degenerate" in str(w.message)]


def test_action_stop_ends_training_at_the_first_degenerate_validation(data):
    out = data["tmp"] / "stop"
    with pytest.warns(UserWarning, match="stopping training"):
        run_train(
            tiny_args(
                data,
                out,
                f"model.class_path={__name__}.OneStringModule",
                "callbacks.degenerate_generation.action=stop",
                "trainer.max_epochs=3",
            )
        )
    epochs = {r["epoch"] for r in csv_rows(out) if r.get("val/granular/degenerate")}
    assert epochs == {"0"}  # three epochs asked, one validation run


def test_validations_before_check_from_step_are_logged_but_neither_warn_nor_stop(data, recwarn):
    out = data["tmp"] / "late_check"
    run_train(
        tiny_args(
            data,
            out,
            f"model.class_path={__name__}.OneStringModule",
            "callbacks.degenerate_generation.action=stop",
            "callbacks.degenerate_generation.check_from_step=4",  # 2 steps per epoch: from the 2nd epoch on
            "trainer.max_epochs=3",
        )
    )
    flags = [(r["epoch"], r["val/granular/degenerate"]) for r in csv_rows(out) if r.get("val/granular/degenerate")]
    assert flags == [("0", "1.0"), ("1", "1.0")]  # measured at epoch 0, stopped at epoch 1 (step 4)
    warned = [str(w.message) for w in recwarn if "degenerate generation at val" in str(w.message)]
    assert len(warned) == 2 and all("(step 4)" in w for w in warned)  # one per level, none at step 2


def test_bad_detector_action_is_a_config_error(data, capsys):
    with pytest.raises(SystemExit) as e:
        run_train(tiny_args(data, data["tmp"] / "bad", "callbacks.degenerate_generation.action=explode"))
    assert e.value.code == 2 and "callbacks.degenerate_generation.action" in capsys.readouterr().err


def test_a_monitor_the_model_never_logs_is_a_config_error_before_any_run_dir(data, capsys):
    """Generation off: val/selection_score is never computed, so monitoring it is refused up front
    (Lightning would raise after the first validation, with a run directory half made)."""
    out = data["tmp"] / "no-generation"
    with pytest.raises(SystemExit) as e:
        run_train(tiny_args(data, out, "model.generate_on_validation=false", "callbacks.early_stopping.enabled=true"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "callbacks.checkpoint.monitor=val/selection_score" in err
    assert "model.generate_on_validation=true" in err and not out.exists()


# --- checkpoint selection on the task's metric ---------------------------------------------------
class WeightsAtValidation(Callback):
    """Built from config: a copy of the model's weights and the dev metrics at the end of every
    validation, kept in a class attribute for the test to read."""

    seen: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        type(self).seen.append(
            {
                "epoch": trainer.current_epoch,
                "score": float(trainer.callback_metrics["val/selection_score"]),
                "loss": float(trainer.callback_metrics["val/loss"]),
                "weights": {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()},
            }
        )


def test_selection_score_is_the_weighted_mean_of_the_levels():
    from feedback_nlp.lightning_modules.issue_objectives import check_selection, selection_score

    values = {"coarse": {"simcse_f1": 0.6, "rouge1": 0.1}, "granular": {"simcse_f1": 0.3, "rouge1": 0.5}}
    assert selection_score(values, *check_selection("simcse_f1", None)) == pytest.approx(0.45)
    assert selection_score(values, *check_selection("rouge1", {"coarse": 1, "granular": 3})) == pytest.approx(0.4)
    assert selection_score(values, *check_selection("simcse_f1", {"coarse": 0, "granular": 1})) == pytest.approx(0.3)
    for bad in ({"fine": 1.0}, {"coarse": -1.0}, {"coarse": 0.0}):
        with pytest.raises(ValueError, match="model.selection_weights"):
            check_selection("simcse_f1", bad)
    with pytest.raises(ValueError, match="model.selection_metric"):
        check_selection("bleu", None)


def test_export_holds_the_best_metric_epoch_not_the_last_or_lowest_loss(data, monkeypatch):
    """The dev score is scripted per validation (best at the first of three epochs) so the best-metric
    epoch is neither the last one nor the one with the lowest dev loss; the run's export (and the
    checkpoint its test metrics come from) must hold that epoch's weights."""
    from safetensors.torch import load_file

    from feedback_nlp.lightning_modules import multilevel_issues

    scripted, real = [0.6, 0.2, 0.4], multilevel_issues.selection_score
    monkeypatch.setattr(multilevel_issues, "selection_score", lambda *a: scripted.pop(0) if scripted else real(*a))
    WeightsAtValidation.seen.clear()
    out = data["tmp"] / "selected"
    run_train(
        tiny_args(
            data,
            out,
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=4",
            "model.optim.lr=0.003",
            "callbacks.checkpoint.monitor=val/selection_score",
            "callbacks.checkpoint.mode=max",
            f"+callbacks.recorder.class_path={__name__}.WeightsAtValidation",
        )
    )
    seen = WeightsAtValidation.seen
    assert [s["score"] for s in seen] == pytest.approx([0.6, 0.2, 0.4])
    lowest_loss = min(range(3), key=lambda i: seen[i]["loss"])
    assert lowest_loss != 0  # the loss would have picked another epoch
    exported = load_file(out / "export" / "model.safetensors")
    assert exported

    def same(epoch: int) -> bool:
        return all(torch.equal(exported[k], seen[epoch]["weights"][k]) for k in exported)

    assert same(0) and not same(2) and not same(lowest_loss)
    best = json.loads((out / "best_metrics.json").read_text())["val/selection_score"]
    assert best["epoch"] == 0 and best["value"] == pytest.approx(0.6)
    assert next((out / "checkpoints").glob("best-*.ckpt")).name.startswith("best-epoch=0-")


# --- recipe options: weighted loss, label smoothing, repetition penalty ---------------------------
def test_task_loss_weights_and_label_smoothing_by_hand():
    import torch.nn.functional as F

    from feedback_nlp.lightning_modules.issue_objectives import check_loss_weights, row_weights
    from feedback_nlp.lightning_modules.seq2seq_backbone import seq2seq_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)

    class Fixed(torch.nn.Module):
        def prepare_decoder_input_ids_from_labels(self, labels):
            return labels

        def forward(self, **kw):
            return type("Out", (), {"logits": logits})()

    labels = torch.tensor([[1, 2, -100], [3, 4, 0]])
    ce = [[F.cross_entropy(logits[r, t][None], labels[r, t][None]).item() for t in range(3)] for r in range(2)]
    rows = [ce[0][0] + ce[0][1], sum(ce[1])]
    weights = check_loss_weights({"granular": 2.0, "coarse": 1.0})
    assert weights == {"granular": 2.0}
    w = row_weights(weights, ["coarse", "granular"], torch.device("cpu"))
    mean, row_sum, count = seq2seq_loss(Fixed(), None, None, labels, 0.0, w)
    assert count.tolist() == [2, 3]
    assert row_sum.tolist() == pytest.approx(rows, rel=1e-5)
    assert mean.item() == pytest.approx((rows[0] + 2 * rows[1]) / (2 + 2 * 3), rel=1e-5)
    plain, _, _ = seq2seq_loss(Fixed(), None, None, labels)
    assert plain.item() == pytest.approx(sum(rows) / 5, rel=1e-5)
    smooth, _, _ = seq2seq_loss(Fixed(), None, None, labels, 0.1)
    keep = labels != -100
    want = F.cross_entropy(logits[keep], labels[keep], label_smoothing=0.1)
    assert smooth.item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ValueError, match="model.task_loss_weights"):
        check_loss_weights({"fine": 2.0})


def test_repetition_penalty_reaches_generate_and_the_export(data, tmp_path):
    from feedback_nlp.nets.multilevel_issues import generation_kwargs

    module = MultiLevelIssuesModule(pretrained=data["model"], repetition_penalty=1.3, no_repeat_ngram_size=3)
    kwargs = generation_kwargs(module.model.generation_config)
    assert kwargs["repetition_penalty"] == 1.3 and kwargs["no_repeat_ngram_size"] == 3
    plain = MultiLevelIssuesModule(pretrained=data["model"]).model.generation_config
    assert "repetition_penalty" not in generation_kwargs(plain)
    fields = module.export_for_serving(tmp_path / "export")
    assert fields["generation"]["repetition_penalty"] == 1.3


# --- the seed sweep --------------------------------------------------------------------------------
def test_seed_sweep_prints_mean_std_min_of_each_seeds_metrics(data, capsys, monkeypatch):
    import numpy as np

    from feedback_nlp.cli import sweep

    out = data["tmp"] / "seeds"
    args = tiny_args(data, out)
    overrides = [a for a in args[2:] if not a.startswith("output_dir=")]
    sweep.main(["--config", CONFIG, "--seeds", "0,1,2", "--out", str(out), "--metrics", "test/*", *overrides])
    printed = capsys.readouterr().out
    per_seed = [json.loads((out / f"seed_{s}" / "metrics.json").read_text()) for s in (0, 1, 2)]
    assert len({m["test/loss"] for m in per_seed}) == 3  # the seeds train different models
    rows = {line.split("|")[1].strip(): line for line in printed.splitlines() if line.startswith("| test/")}
    for name in ("test/loss", "test/granular/loss", "test/coarse/simcse_f1"):
        values = np.array([m[name] for m in per_seed])
        cells = [c.strip() for c in rows[name].split("|")[1:-1]]
        assert cells[1:4] == [f"{v:.4f}" for v in values]
        mean, std, lo, hi = (float(c) for c in cells[4:8])
        assert mean == pytest.approx(values.mean(), abs=6e-5)
        assert std == pytest.approx(values.std(ddof=1), abs=6e-5)
        assert (lo, hi) == (pytest.approx(values.min(), abs=6e-5), pytest.approx(values.max(), abs=6e-5))
    saved = json.loads((out / "seeds.json").read_text())
    assert saved["metrics"]["test/loss"]["std"] == pytest.approx(np.std([m["test/loss"] for m in per_seed], ddof=1))
    assert saved["runs"]["1"] == str(out / "seed_1") and "seed: 1" in (out / "seed_1" / "config.yaml").read_text()
    # finished seeds are not trained again: a rerun only reads their metrics.json
    from feedback_nlp.cli import seeds

    monkeypatch.setattr(seeds, "_train", lambda *a: pytest.fail("a finished seed was trained again"))
    again = seeds.run_seeds(CONFIG, [0, 1, 2], out, overrides)
    assert again["metrics"]["test/loss"]["mean"] == pytest.approx(saved["metrics"]["test/loss"]["mean"])


def test_seed_sweep_arguments(capsys):
    from feedback_nlp.cli import sweep
    from feedback_nlp.cli.seeds import parse_seeds, summarize

    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,4,7") == [0, 4, 7]
    for bad in ("0", "x", "1,1"):
        with pytest.raises(SystemExit) as e:
            sweep.main(["--config", CONFIG, "--seeds", bad])
        assert e.value.code == 2 and "--seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        sweep.main(["--config", CONFIG, "--seeds", "2", "seed=4"])
    assert e.value.code == 2 and "seed=4" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        sweep.main(["--config", CONFIG])  # a config without seeds is neither form
    assert e.value.code == 2
    one = summarize({5: {"test/x": 0.25, "val/y": 1.0}})
    assert set(one) == {"test/x"} and one["test/x"]["std"] == 0.0 and not math.isnan(one["test/x"]["mean"])


def test_split_seed_keeps_the_split_while_the_seed_changes_the_order(tmp_path):
    from feedback_nlp.datamodules.multilevel_issues import MultilevelIssuesDataModule

    path = atomic_write_jsonl(tmp_path / "f.jsonl", generate_feedback(random.Random(1), 60))

    def ids(dm: MultilevelIssuesDataModule) -> tuple[list[str], ...]:
        s = dm.validate()
        return tuple(sorted(r.id for r in part) for part in (s.train, s.dev, s.test))

    base = dict(path=str(path), split="random", test_fraction=0.2, dev_fraction=0.2)
    fixed = [MultilevelIssuesDataModule(seed=s, split_seed=0, **base) for s in (0, 1)]
    assert ids(fixed[0]) == ids(fixed[1]) == ids(MultilevelIssuesDataModule(seed=0, **base))
    assert ids(MultilevelIssuesDataModule(seed=1, **base)) != ids(fixed[0])  # without split_seed the split follows seed
    from tests.tiny_models import train_wordpiece

    tokenizer = train_wordpiece([json.dumps(r) for r in generate_feedback(random.Random(1), 60)], tmp_path / "tok")
    for dm in fixed:
        dm.connect(tokenizer=tokenizer)
        dm.setup("fit")
    orders = [list(dm.train_dataloader().batch_sampler.sampler) for dm in fixed]
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]
