"""`monitor` on a synthetic prediction log written by the real writer: two ISO weeks, English and
German claims, a planted precision drop (English, week 11) and a planted score drift (German,
week 11). KPIs are checked against hand-computed windows, PSI against the hand-computed bin
shares, KS against scipy; the alerts must name exactly the planted problems; the command exits 1
with one `alert:` line per crossed bound, writes its files, and refuses a bad outcome line.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp.core.records import TextRecord
from feedback_nlp.operations.monitor import alerts, monitor, reference_arrays
from feedback_nlp.operations.outcomes import read_outcomes
from feedback_nlp.operations.rules import parse_rule
from feedback_nlp.serving.prediction_log import PredictionLog, read_log
from tests.scale_helpers import job_env

SCRIPT = str(Path(sys.executable).parent / "feedback-nlp")
WEEK_START = {"W10": datetime(2026, 3, 2, 12), "W11": datetime(2026, 3, 9, 12)}  # Mondays
REFERENCE = [round(x, 6) for x in np.linspace(0.01, 0.99, 200)]  # uniform: the tested scores


def planted():
    """(log rows, outcomes): 100 claims per (week, language), each with score, decision, label."""
    rows, outcomes = [], []
    for week, start in WEEK_START.items():
        for lang in ("en", "de"):
            for i in range(100):
                if lang == "de" and week == "W11":
                    score = 0.601 + 0.004 * i  # planted drift: every German score above 0.6
                else:
                    score = (i + 0.5) / 100  # like the reference
                decision = int(score >= 0.5)
                if lang == "en" and week == "W10":
                    label = 1 if (decision and i < 95) or (not decision and i < 5) else 0  # 45 tp 5 fp 5 fn
                elif lang == "en":
                    label = 1 if decision and i < 70 else 0  # planted precision drop: 20 tp 30 fp 0 fn
                else:
                    label = 1 if decision and i % 5 else 0  # 4 of 5 forwarded are safety cases
                rid = f"{week}-{lang}-{i}"
                at = start + timedelta(days=i % 7, minutes=i)
                rows.append((rid, lang, at, score, decision, i % 10 == 0))  # every 10th escalated by FCC
                if i % 4 != 3 or lang == "de":  # English: a quarter not yet labelled
                    outcomes.append({"id": rid, "label": label, "labelled_at": (at + timedelta(days=3)).isoformat()})
    return rows, outcomes


def write_log(root: Path, rows, version="v1") -> None:
    log = PredictionLog(root, "product_safety", rotate_seconds=60)
    for rid, lang, at, score, decision, esc in rows:
        rec = TextRecord(rid, f"claim {rid}", lang, esc)
        row = {"id": rid, "label": ["not", "ps"][decision], "probability": score, "decision": decision}
        log.append(
            [rec], [{**row, "threshold": 0.5, "model_version": version, "predicted_at": at.isoformat() + "+00:00"}]
        )
    log.close()


def expected(rows, outcomes, week, lang):
    """The window's KPIs counted by hand from the planted rows."""
    label = {o["id"]: o["label"] for o in outcomes}
    mine = [r for r in rows if r[0].startswith(week) and (lang == "all" or r[1] == lang)]
    tp = sum(1 for r in mine if r[4] and label.get(r[0]) == 1)
    fp = sum(1 for r in mine if r[4] and label.get(r[0]) == 0)
    fn = sum(1 for r in mine if not r[4] and label.get(r[0]) == 1)
    return {
        "records": len(mine),
        "volume_model": sum(r[4] for r in mine),
        "volume_model_or_fcc": sum(1 for r in mine if r[4] or r[5]),
        "fcc": sum(r[5] for r in mine),
        "labelled": sum(1 for r in mine if r[0] in label),
        "positives": tp + fn,
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
    }


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitor")
    rows, outcomes = planted()
    write_log(tmp / "log", rows)
    (tmp / "outcomes.jsonl").write_text("".join(json.dumps(o) + "\n" for o in outcomes))
    export = tmp / "export"  # what monitor reads of an export: its manifest and reference sample
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"task": "product_safety", "model_version": "v1"}))
    sample = {"task": "product_safety", "score": "probability", "splits": {"test": {"en": REFERENCE, "de": REFERENCE}}}
    (export / "reference_scores.json").write_text(json.dumps(sample))
    return tmp, rows, outcomes


def monitor_rows(tmp):
    from feedback_nlp.cli.monitor import read

    refs = {"v1": reference_arrays(json.loads((tmp / "export" / "reference_scores.json").read_text()), "test")}
    return monitor(read(str(tmp / "log"), None, None), read_outcomes([tmp / "outcomes.jsonl"], True), refs)


def test_weekly_kpis_match_the_hand_counted_windows(synthetic):
    tmp, rows, outcomes = synthetic
    got = {(r["window"], r["start"], r["language"]): r for r in monitor_rows(tmp)}
    for week in ("W10", "W11"):
        for lang in ("en", "de", "all"):
            row = got[("week", f"2026-{week}", lang)]
            want = expected(rows, outcomes, week, lang)
            assert {k: row[k] for k in want} == pytest.approx(want), (week, lang)
    # the planted numbers, by hand (English claims i % 4 == 3 have no label yet): forwarded and
    # labelled 37 of 50 each week; safety among them 34 (week 10, i < 95) -> 15 (week 11, i < 70);
    # week 10's missed safety claims are i = 0, 1, 2, 4
    assert got[("week", "2026-W10", "en")]["precision"] == pytest.approx(34 / 37)
    assert got[("week", "2026-W10", "en")]["recall"] == pytest.approx(34 / 38)
    assert got[("week", "2026-W11", "en")]["precision"] == pytest.approx(15 / 37)
    assert got[("week", "2026-W11", "de")]["volume_model"] == 100
    # one month (both weeks); seven days per week, each day's rows add up to the week's
    assert got[("month", "2026-03", "all")]["records"] == 400
    week10 = {f"2026-03-0{d}" for d in range(2, 9)}
    days = [r for k, r in got.items() if k[0] == "day" and k[2] == "en" and k[1] in week10]
    assert len(days) == 7 and sum(r["records"] for r in days) == 100  # 2 to 8 March: week 10


def test_drift_is_psi_of_the_hand_counted_bins_and_scipy_ks(synthetic):
    from scipy.stats import ks_2samp

    tmp, _, _ = synthetic
    got = {(r["window"], r["start"], r["language"]): r for r in monitor_rows(tmp)}
    # reference deciles of the uniform sample put 20 of 200 in each bin (share 0.1); the drifted
    # German week has 0 in the six bins below 0.598 (share floored at 1e-4) and 24, 25, 24, 27
    shares = [1e-4] * 6 + [0.24, 0.25, 0.24, 0.27]
    psi = sum((a - 0.1) * math.log(a / 0.1) for a in shares)
    assert got[("week", "2026-W11", "de")]["psi"] == pytest.approx(psi, rel=1e-9)
    drifted = [0.601 + 0.004 * i for i in range(100)]
    assert got[("week", "2026-W11", "de")]["ks"] == pytest.approx(ks_2samp(drifted, REFERENCE).statistic)
    assert got[("week", "2026-W10", "de")]["psi"] < 0.05 and got[("week", "2026-W11", "en")]["psi"] < 0.05
    assert got[("week", "2026-W11", "de")]["score_hist"] == [0] * 6 + [25, 25, 25, 25]


def test_alerts_name_exactly_the_planted_problems(synthetic):
    tmp, _, _ = synthetic
    rules = [parse_rule("week:precision>=0.6"), parse_rule("week:psi<=0.25"), parse_rule("recall>=0.5")]
    lines = alerts(monitor_rows(tmp), rules, min_support=20)
    assert sorted(line.split(":")[0] for line in lines) == [
        "model v1 week 2026-W11 all",  # the pooled week's scores shifted too
        "model v1 week 2026-W11 de",
        "model v1 week 2026-W11 en",
    ]
    assert any("W11 en: precision 0.4054 < 0.6" in line for line in lines)
    assert any("W11 de: psi" in line for line in lines)
    # too few labels behind a day's precision: not checked
    assert alerts(monitor_rows(tmp), [parse_rule("day:precision>=0.99")], min_support=1000) == []


def run(*args, env=None):
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, env=env or job_env(), timeout=300)


def test_the_command_exits_1_with_one_alert_line_each_and_writes_its_outputs(synthetic, tmp_path):
    tmp, _, _ = synthetic
    common = ["monitor", "--log", tmp / "log", "--outcomes", tmp / "outcomes.jsonl", "--export", tmp / "export"]
    proc = run(*common, "--out", tmp_path / "out", "--bound", "week:precision>=0.6", "--bound", "week/de:psi<=0.25")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        "alert: model v1 week 2026-W11 de: " + proc.stderr.split("W11 de: ")[1].splitlines()[0],
        "alert: model v1 week 2026-W11 en: " + proc.stderr.split("W11 en: ")[1].splitlines()[0],
    ]
    report = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert report["predictions"] == 400 and len(report["alerts"]) == 2 and report["references"] == ["v1"]
    assert "| 2026-W11 | en |" in (tmp_path / "out" / "monitor.md").read_text()
    pngs = sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png"))
    assert pngs == ["kpis_v1_day.png", "kpis_v1_month.png", "kpis_v1_week.png", "scores_v1.png"]
    # no bound crossed: 0, nothing on stderr; with --logger wandb the same goes to an offline run
    proc = run(*common, "--out", tmp_path / "ok", "--windows", "week", "--logger", "wandb")
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr[-2000:]
    import wandb

    from tests.wandb_offline import read_run

    wandb.teardown()  # the W&B service may still be flushing the run's log when finish() returns
    wandb_run = read_run(tmp_path / "ok")
    logged = {k for row in wandb_run.history for k in row}
    assert {"monitor/kpis", "monitor/kpis_v1_week", "monitor/scores_v1"} <= logged, logged
    assert wandb_run.summary["monitor/alerts"] == 0 and wandb_run.summary["monitor/predictions"] == 400


def test_bad_outcome_lines_and_bounds_are_one_error_before_any_output(synthetic, tmp_path, capsys):
    from feedback_nlp.cli import monitor as cli

    tmp, _, _ = synthetic
    bad = tmp_path / "bad.jsonl"
    good = '{"id": "W10-en-0", "label": 1, "labelled_at": "2026-03-05"}\n'
    bad.write_text(good + '{"id": "x", "label": "yes", "labelled_at": "2026-03-05"}\n')
    assert cli.main(["--log", str(tmp / "log"), "--outcomes", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 problem(s)") and f"{bad}:2: field 'label': expected 1, 0, true or false" in err
    assert cli.main(["--log", str(tmp / "log"), "--out", str(tmp_path / "out"), "--bound", "week:precison>=0.5"]) == 2
    err = capsys.readouterr().err
    assert "unknown metric 'precison'" in err and len(err.splitlines()) == 1
    assert cli.main(["--log", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_parquet_outcomes_read_like_jsonl(synthetic, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp, _, outcomes = synthetic
    path = tmp_path / "outcomes.parquet"
    pq.write_table(pa.Table.from_pylist(outcomes), path)
    assert read_outcomes([path], True) == read_outcomes([tmp / "outcomes.jsonl"], True)
    assert read_log(tmp / "log").num_rows == 400
