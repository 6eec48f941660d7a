"""Benchmark: one SeaCat training step (002 §2.4 shapes: 64 sentences x 128 tokens), our flat
real-sentence batching vs the naive padded time-distributed implementation.

    python bench/seacat_step.py                                # packaged MiniLM, batch 2
    python bench/seacat_step.py --encoder distilbert --batch-size 8 --steps 5   # paper's encoder shape

Naive (the paper's formulation, TF TimeDistributed): every transcript zero-padded to
64 x 128, the encoder runs on all B x 64 sentences of 128 tokens, padded ones included.
Ours (datamodules/seacat.py + SeaCatNet): only the real sentences, deduplicated, as one
flat batch padded to its longest sentence, scattered back into the 64-sentence grid. Both do
forward + cross-entropy + backward + AdamW step on the same weights and the same transcripts
(the demo generator's chats: realistic sentence counts and lengths), and the bench checks
that both give the same logits. Prints seconds per step and the ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F

from feedback_nlp.core.records import parse_transcript
from feedback_nlp.datamodules.seacat import collate_features, featurize
from feedback_nlp.lightning_modules.seacat import NET_INPUTS, SeaCatNet


def build_encoder(name: str):
    from feedback_nlp.core.model_factory import load_model, load_tokenizer

    tok = load_tokenizer("packaged:all-MiniLM-L6-v2")
    if name == "minilm":
        return load_model("AutoModel", "packaged:all-MiniLM-L6-v2"), tok
    if name == "distilbert":  # distilbert-base-uncased's shape (6 x 768), random weights: timing only
        from transformers import DistilBertConfig, DistilBertModel

        return DistilBertModel(DistilBertConfig(vocab_size=tok.vocab_size)), tok
    raise SystemExit(f"--encoder must be minilm or distilbert, got {name}")


def naive_forward(net: SeaCatNet, tokenizer, feats, s: int, t: int, labels: torch.Tensor):
    """B x S x T padded block through the encoder, then the same pooling/attention."""
    b = len(feats)
    texts = [f.sentences[i] if i < len(f.sentences) else "" for f in feats for i in range(s)]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=t, return_tensors="pt")
    mask = torch.tensor([[i < len(f.sentences) for i in range(s)] for f in feats])
    enc["attention_mask"][~mask.view(-1)] = 0
    emb = net.encode_sentences(enc["input_ids"], enc["attention_mask"]).view(b, s, -1)
    pos = torch.tensor([f.positions + [0] * (s - len(f.positions)) for f in feats])
    grid = emb + net.positions(pos)
    logits, _ = net.attend(grid, mask)
    return logits, F.cross_entropy(logits, labels)


def flat_forward(net: SeaCatNet, tokenizer, feats, s: int, t: int, labels: torch.Tensor):
    batch = collate_features(feats, tokenizer, t)
    logits, _ = net(**{k: batch[k] for k in NET_INPUTS})
    return logits, F.cross_entropy(logits, labels)


def time_steps(fn, net, opt, steps: int) -> list[float]:
    out = []
    for i in range(steps + 1):  # first step = warm-up, not counted
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = fn()
        loss.backward()
        opt.step()
        if i:
            out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default="minilm", choices=("minilm", "distilbert"))
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-sentences", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--transcripts",
        default=None,
        help="transcript JSONL to take the batch from (default: the demo generator's chats)",
    )
    a = p.parse_args()

    torch.manual_seed(a.seed)
    if a.transcripts:
        from feedback_nlp.core.records import load_records

        records = load_records(a.transcripts, "transcript")
        records = [records[i % len(records)] for i in range(a.batch_size)]
    else:
        from feedback_nlp.demo_data.seacat import generate_transcripts

        records = [parse_transcript(r) for r in generate_transcripts(random.Random(a.seed), a.batch_size)]
    feats = [featurize(t, a.max_sentences) for t in records]
    encoder, tok = build_encoder(a.encoder)
    net = SeaCatNet(encoder, 8, a.max_sentences, dropout=0.0).eval()  # eval: no dropout, same maths
    labels = torch.arange(len(feats)) % 8
    n_real = sum(len(f.sentences) for f in feats)
    n_unique = len({x for f in feats for x in f.sentences})
    longest = max(len(tok(x)["input_ids"]) for f in feats for x in f.sentences)
    print(
        f"encoder {a.encoder}, batch {a.batch_size}: {n_real} real sentences ({n_unique} distinct, longest "
        f"{longest} tokens) vs {a.batch_size * a.max_sentences} x {a.max_tokens} padded",
        flush=True,
    )
    with torch.no_grad():
        ln, _ = naive_forward(net, tok, feats, a.max_sentences, a.max_tokens, labels)
        lf, _ = flat_forward(net, tok, feats, a.max_sentences, a.max_tokens, labels)
    print(f"max |logits naive - logits flat| = {(ln - lf).abs().max().item():.2e}", flush=True)

    opt = torch.optim.AdamW([q for q in net.parameters() if q.requires_grad], lr=1e-5)
    flat = time_steps(lambda: flat_forward(net, tok, feats, a.max_sentences, a.max_tokens, labels), net, opt, a.steps)
    print(f"ours  (flat real sentences): {statistics.median(flat):8.3f} s/step", flush=True)
    naive = time_steps(lambda: naive_forward(net, tok, feats, a.max_sentences, a.max_tokens, labels), net, opt, a.steps)
    print(f"naive (padded {a.max_sentences} x {a.max_tokens}):    {statistics.median(naive):8.3f} s/step")
    print(f"speed-up: {statistics.median(naive) / statistics.median(flat):.1f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
