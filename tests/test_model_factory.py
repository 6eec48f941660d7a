"""Model names resolve offline without waiting on a network, or fail with a clear message."""

import socket

import pytest

from feedback_nlp.core.model_factory import (
    PACKAGED_MINILM,
    ModelNotAvailableError,
    load_encoder,
    load_tokenizer,
    resolve_name_or_path,
)
from tests.tiny_models import tiny_bert


def test_uncached_hub_model_fails_fast_and_says_what_to_do(monkeypatch):
    """Fast because nothing touches the network (no DNS lookup, no connect, so no retries),
    checked by recording socket calls rather than by a clock."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network use in an offline test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(ModelNotAvailableError) as e:
        load_tokenizer("someone/definitely-not-cached-model")
    assert attempts == []
    msg = str(e.value)
    assert "someone/definitely-not-cached-model" in msg and "HF_HUB_OFFLINE=1" in msg and "model.pretrained=DIR" in msg


def test_missing_local_path_is_named():
    with pytest.raises(ModelNotAvailableError, match="model path './nowhere/model' does not exist"):
        resolve_name_or_path("./nowhere/model")


def test_local_dir_and_packaged_minilm_load(tmp_path):
    path = tiny_bert(tmp_path / "m", ["hello world"])
    enc = load_encoder(path)
    assert enc.config.hidden_size == 32 and getattr(enc, "pooler", None) is None
    tok = load_tokenizer(PACKAGED_MINILM)
    assert tok("the box was opened")["input_ids"][0] == tok.cls_token_id
    assert resolve_name_or_path(PACKAGED_MINILM).endswith("model")
