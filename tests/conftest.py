"""Test environment: never touch the network, one torch thread, offline W&B.

Why: a missing hub model otherwise costs ~50 s of retries, and on 2 busy cores two torch
threads made a tiny fine-tune 30x slower.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("FEEDBACK_NLP_RUN_DIR", None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# Hypothesis keeps caches in ./.hypothesis by default: keep the working directory clean.
import tempfile  # noqa: E402

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "feedback-nlp-hypothesis"))

from hypothesis import HealthCheck, settings  # noqa: E402

# Property tests: few examples (the suite must stay within minutes on 2 shared cores), no
# deadline (timing is not behaviour), and no example database written into the working directory.
settings.register_profile(
    "repo",
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.load_profile("repo")


RUN_DIR_VAR = "FEEDBACK_NLP_RUN_DIR"  # what ranks a launcher spawns inherit (feedback_nlp/training/run_dir.py)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Every test starts as a fresh job, module-scoped fixtures included: a run directory that an
    earlier in-process run decided must never become the next run's."""
    os.environ.pop(RUN_DIR_VAR, None)


@pytest.fixture(autouse=True)
def _no_inherited_run_dir(monkeypatch):
    # setenv first, so teardown removes whatever the test itself left (delenv of an absent
    # variable records nothing to undo)
    monkeypatch.setenv(RUN_DIR_VAR, "")
    monkeypatch.delenv(RUN_DIR_VAR)


@pytest.fixture()
def wandb_home(tmp_path, monkeypatch):
    """Keep W&B's staging/cache/settings inside the test's tmp dir."""
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    wandb.teardown()  # settings W&B cached from an earlier test's environment must not leak in
    yield tmp_path
    wandb.teardown()
