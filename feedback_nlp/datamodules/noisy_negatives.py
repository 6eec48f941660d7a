"""Noisy-negative mining with beta-balls around labeled positives (001 §3.1, Fig. 2).

Why: labels exist only for FCC-escalated claims (~40% positive) while production traffic is
<1% positive. The paper corrects the prior by adding unlabeled comments as negatives, but only
those that are far from every labeled positive: each positive gets a ball whose radius is
beta times the distance to its nearest labeled negative; an unlabeled comment outside the
union of all balls is a noisy negative.

The math is pure tensors/arrays (no records), chunked over both operands so working memory is
O(chunk_size^2) whatever the corpus size (138K unlabeled x 12.7K labeled in the paper), and
`embed_texts` adds the Sentence-BERT encoder with an on-disk cache keyed by model and text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from feedback_nlp.core.embeddings import EmbeddingCache, SentenceEmbedder, text_key  # noqa: F401 (re-exported)

METRICS = ("euclidean", "cosine")


def _tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    t = t.to(dtype) if dtype is not None else (t if t.is_floating_point() else t.float())
    if t.dim() != 2:
        raise ValueError(f"expected a 2-D (n, dim) embedding matrix, got shape {tuple(t.shape)}")
    return t


def _prep(x: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    if metric == "cosine":
        return torch.nn.functional.normalize(x, dim=1), None
    if metric == "euclidean":
        return x, (x * x).sum(dim=1)
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _distances(
    a: torch.Tensor, a_sq: torch.Tensor | None, b: torch.Tensor, b_sq: torch.Tensor | None, metric: str
) -> torch.Tensor:
    """(len(a), len(b)) distances with one (m, n) buffer: euclidean via |a|^2+|b|^2-2ab, or 1-cos."""
    if metric == "cosine":
        return torch.mm(a, b.T).neg_().add_(1.0)
    if a_sq is None or b_sq is None:
        raise ValueError("euclidean distances need both squared norms (_prep gives them)")
    d2 = torch.addmm(b_sq.unsqueeze(0), a, b.T, beta=1.0, alpha=-2.0)
    return d2.add_(a_sq.unsqueeze(1)).clamp_(min=0.0).sqrt_()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rows", disable=not enabled, leave=False)


def min_margin(
    queries: Any,
    refs: Any,
    offsets: Any = None,
    metric: str = "euclidean",
    chunk_size: int = 2048,
    progress: bool = False,
    desc: str = "distances",
) -> torch.Tensor:
    """For each query q: min over refs r of d(q, r) - offsets[r] (offsets default 0), chunked.

    Working memory is one (chunk_size, chunk_size) block, so peak memory does not grow with
    the number of queries or refs.
    """
    q, r = _tensor(queries), _tensor(refs)
    dtype = torch.promote_types(q.dtype, r.dtype)
    q, r = q.to(dtype), r.to(dtype)
    off = None if offsets is None else torch.as_tensor(offsets, dtype=dtype)
    out = torch.full((q.shape[0],), float("inf"), dtype=dtype)
    if r.shape[0] == 0 or q.shape[0] == 0:
        return out
    r, r_sq = _prep(r, metric)
    with torch.no_grad(), _progress(q.shape[0], desc, progress) as bar:
        for i in range(0, q.shape[0], chunk_size):
            qc, qc_sq = _prep(q[i : i + chunk_size], metric)
            best = out[i : i + chunk_size]
            for j in range(0, r.shape[0], chunk_size):
                d = _distances(
                    qc, qc_sq, r[j : j + chunk_size], None if r_sq is None else r_sq[j : j + chunk_size], metric
                )
                if off is not None:
                    d.sub_(off[j : j + chunk_size].unsqueeze(0))
                torch.minimum(best, d.amin(dim=1), out=best)
            bar.update(qc.shape[0])
    return out


def ball_radii(
    positives: Any,
    negatives: Any,
    beta: float = 0.5,
    metric: str = "euclidean",
    chunk_size: int = 2048,
    progress: bool = False,
) -> torch.Tensor:
    """001 Fig. 2: radius of each positive's ball = beta * distance to its nearest labeled negative."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1] (paper §3.1), got {beta}")
    return beta * min_margin(positives, negatives, None, metric, chunk_size, progress, "ball radii")


@dataclass
class MiningResult:
    candidates: np.ndarray  # indices of unlabeled rows outside every ball (ascending)
    margin: np.ndarray  # per unlabeled row: min over positives of d(u, p) - radius(p); > 0 = outside
    radii: np.ndarray  # per positive


def mine_noisy_negatives(
    unlabeled: Any,
    positives: Any,
    negatives: Any,
    beta: float = 0.5,
    metric: str = "euclidean",
    chunk_size: int = 2048,
    progress: bool = False,
) -> MiningResult:
    """001 §3.1: the unlabeled rows lying outside the union of the positives' beta-balls.

    No labeled negatives -> every radius is infinite and nothing is mined; no positives -> no
    ball exists and every unlabeled row is a candidate.
    """
    u = _tensor(unlabeled)
    radii = ball_radii(positives, negatives, beta, metric, chunk_size, progress)
    margin = min_margin(u, positives, radii, metric, chunk_size, progress, "noisy negatives")
    cand = torch.nonzero(margin > 0).flatten().numpy()
    return MiningResult(cand, margin.numpy(), radii.numpy())


def select(
    candidates: np.ndarray,
    limit: int | None,
    margin: np.ndarray | None = None,
    how: str = "random",
    keys: Sequence[str] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Cap the mined set at `limit` (001 §3.1: "a proportionate chunk").

    `random` orders by a seeded hash of each key (stable when records are added), `farthest`
    keeps the rows with the largest margin outside the balls (the least ambiguous negatives).
    """
    if limit is None or limit >= len(candidates):
        return np.sort(candidates)
    if how == "farthest":
        if margin is None:
            raise ValueError("select(how='farthest') needs margin")
        order = np.argsort(-margin[candidates], kind="stable")
    elif how == "random":
        from feedback_nlp.datamodules.splits import hash_unit

        names = [str(i) for i in candidates] if keys is None else [keys[i] for i in candidates]
        order = np.argsort([hash_unit(k, seed) for k in names], kind="stable")
    else:
        raise ValueError(f"nn selection must be 'random' or 'farthest', got {how!r}")
    return np.sort(candidates[order[: max(0, limit)]])


# --- Sentence-BERT embeddings (the one wrapper lives in feedback_nlp/core/embeddings.py) ---------------


def embed_texts(
    texts: Sequence[str],
    model_name: str,
    cache_dir: str | Path | None = ".cache/embeddings",
    batch_size: int = 64,
    normalize: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """(len(texts), dim) float32 Sentence-BERT embeddings, computing only texts not cached yet."""
    embedder = SentenceEmbedder(model_name, batch_size=batch_size, normalize=normalize, cache_dir=cache_dir)
    return embedder.encode(texts, progress=progress)


# --- the config section: data.noisy_negatives ---------------------------------------------

SELECTIONS = ("random", "farthest")


class NoisyNegatives:
    """001 §3.1 / Fig. 2 as one configured step: unlabeled comments (the pool, what FCC filtered
    out) lying outside every labeled positive's beta-ball become label-0 training claims.

    Why an object: the pool's source, the embedder and the mining settings belong together and
    are what `data.noisy_negatives` in a config holds; the DataModule only hands it records.

    Args:
        beta: Ball radius as a share of each positive's distance to its nearest labeled negative, in (0, 1].
        metric: Embedding distance: euclidean or cosine.
        max_count: At most this many mined negatives (null: no count cap).
        ratio: At most ratio x the number of labeled claims (null: no ratio cap).
        selection: Which mined negatives a cap keeps: random or farthest (from every ball).
        chunk_size: Rows per distance block (memory bound of the pairwise distances).
        pool_max: Embed at most this many pool comments, a seeded sample (null: the whole pool).
        unlabeled_path: Extra unlabeled comments JSONL added to the pool.
        exclude_escalated: Leave comments that FCC escalated out of the pool.
        embedding_model: Sentence-transformers model that embeds the claims.
        embedding_cache_dir: Folder caching embeddings across runs (null: no cache).
        embedding_batch_size: Texts per embedding batch.
    """

    def __init__(
        self,
        beta: float = 0.5,
        metric: str = "euclidean",
        max_count: int | None = None,
        ratio: float | None = None,
        selection: str = "random",
        chunk_size: int = 2048,
        pool_max: int | None = None,
        unlabeled_path: str | None = None,
        exclude_escalated: bool = True,
        embedding_model: str = "packaged:all-MiniLM-L6-v2",
        embedding_cache_dir: str | None = ".cache/embeddings",
        embedding_batch_size: int = 64,
    ):
        if not 0 < beta <= 1:
            raise ValueError(f"data.noisy_negatives.beta must be in (0, 1], got {beta}")
        if selection not in SELECTIONS:
            raise ValueError(f"data.noisy_negatives.selection must be one of {SELECTIONS}, got {selection!r}")
        self.beta, self.metric, self.max_count, self.ratio = beta, metric, max_count, ratio
        self.selection, self.chunk_size, self.pool_max = selection, chunk_size, pool_max
        self.unlabeled_path, self.exclude_escalated = unlabeled_path, exclude_escalated
        self.embedder = SentenceEmbedder(
            embedding_model, batch_size=embedding_batch_size, cache_dir=embedding_cache_dir
        )

    def sample_pool(self, pool: Sequence[Any], seed: int) -> list[Any]:
        """A seeded random sample of the pool (stable per id) of at most `pool_max`, so only it
        needs embedding; the salted hash keeps this draw independent of the train/dev draw."""
        from feedback_nlp.datamodules.splits import hash_unit

        pool = list(pool)
        if self.pool_max is not None and len(pool) > self.pool_max:
            pool = sorted(pool, key=lambda r: hash_unit(f"nn-pool:{r.id}", seed))[: self.pool_max]
        return pool

    def mine(
        self, labeled: Sequence[Any], pool: Sequence[Any], seed: int, progress: bool = False
    ) -> tuple[list[int], MiningResult, list[Any]]:
        """(indices into the sampled pool to keep, the mining result, the sampled pool)."""
        pool = self.sample_pool(pool, seed)
        pos = [r for r in labeled if r.label == 1]
        neg = [r for r in labeled if r.label == 0]
        emb = self.embedder.encode([r.text for r in pos + neg + pool], progress=progress)
        p, n, u = emb[: len(pos)], emb[len(pos) : len(pos) + len(neg)], emb[len(pos) + len(neg) :]
        res = mine_noisy_negatives(u, p, n, self.beta, self.metric, self.chunk_size, progress)
        limits = [
            x
            for x in (self.max_count, None if self.ratio is None else round(self.ratio * len(labeled)))
            if x is not None
        ]
        keep = select(
            res.candidates,
            min(limits) if limits else None,
            res.margin,
            self.selection,
            [f"nn-select:{r.id}" for r in pool],
            seed,
        )
        return [int(i) for i in keep], res, pool
