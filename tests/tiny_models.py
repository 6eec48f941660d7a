"""Tiny random HF models saved to disk, so tests run the real `from_pretrained` loading path.

Why: tests must not download weights, and a 2-layer, 32-dim model fine-tunes in seconds on
one CPU thread; the tokenizer is trained on the fly from the texts the test will feed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

BASE_WORDS = (
    "hi hello thanks order item product size smell rash skin burn sharp edge broken heel "
    "delivery refund return account payment card missing box cable picture quality damaged "
    "the a is it my i was not no and to of for with this that in on"
).split()


def train_wordpiece(texts: Iterable[str], out_dir: Path, vocab_size: int = 400):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    tok.train_from_iterator(list(texts) + [" ".join(BASE_WORDS)], trainer=trainer)
    fast = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(out_dir)
    return fast


def tiny_bert(out_dir: Path, texts: Iterable[str] = (), hidden: int = 32, layers: int = 2, seed: int = 0) -> str:
    """A 2-layer random BERT + WordPiece tokenizer in `out_dir`; returns the path as a str."""
    import torch
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = train_wordpiece(texts, out_dir)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
    )
    BertModel(cfg).save_pretrained(out_dir, safe_serialization=True)
    return str(out_dir)


def tiny_seacat_run(folder: Path, n: int, seed: int) -> tuple[Path, list[str]]:
    """(transcripts file, overrides of configs/experiment/seacat_demo.yaml) for a seconds-long
    SeaCat run on `n` synthetic transcripts: a tiny BERT trained on their words, 8 sentences x
    12 tokens, one epoch of 2 batches, no serving export."""
    import json
    import random

    from feedback_nlp.demo_data.seacat import generate_transcripts

    rows = generate_transcripts(random.Random(seed), n)
    data = folder / "transcripts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bert = tiny_bert(folder / "bert", [t["text"] for r in rows for t in r["turns"]])
    return data, [
        f"data.path={data}",
        f"model.pretrained={bert}",
        "model.freeze_layers=0",
        "data.batch_size=8",
        "model.max_sentences=8",
        "model.max_tokens=12",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.accelerator=cpu",
        "callbacks.serving_export=null",
    ]
