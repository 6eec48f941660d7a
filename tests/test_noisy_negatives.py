"""001 §3.1 / Fig. 2 beta-ball mining against brute force, and the embedding cache."""

import numpy as np
import pytest

from feedback_nlp.datamodules import noisy_negatives as nn_mod
from feedback_nlp.datamodules.noisy_negatives import ball_radii, embed_texts, mine_noisy_negatives, select


def brute_force(u, p, n, beta, metric):
    """Independent reference: explicit pairwise differences, no matmul trick, no chunks."""

    def dist(a, b):
        if metric == "cosine":
            a = a / np.linalg.norm(a, axis=1, keepdims=True)
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
            return 1.0 - np.einsum("id,jd->ij", a, b)
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    radii = beta * dist(p, n).min(axis=1)
    outside = (dist(u, p) > radii[None, :]).all(axis=1)
    return np.flatnonzero(outside), radii


def test_figure_2_in_two_dimensions():
    pos, neg = np.array([[0.0, 0.0]]), np.array([[2.0, 0.0]])  # nearest negative at distance 2
    unl = np.array([[0.5, 0.0], [1.5, 0.0], [0.0, -2.0], [0.0, 0.99]])
    res = mine_noisy_negatives(unl, pos, neg, beta=0.5)  # ball radius 1
    assert res.radii.tolist() == [1.0]
    assert res.candidates.tolist() == [1, 2]  # (0.5,0) and (0,0.99) lie inside
    assert res.margin[1] == pytest.approx(0.5)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 1.0])
def test_matches_brute_force_with_chunking(metric, beta):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 6))
    u = centers[rng.integers(0, 4, 120)] + 0.6 * rng.normal(size=(120, 6))
    p = centers[rng.integers(0, 2, 9)] + 0.4 * rng.normal(size=(9, 6))
    n = centers[rng.integers(2, 4, 11)] + 0.4 * rng.normal(size=(11, 6))
    want, radii = brute_force(u, p, n, beta, metric)
    for chunk in (4, 7, 1000):  # chunks smaller than every operand, uneven, and larger than all
        res = mine_noisy_negatives(u, p, n, beta=beta, metric=metric, chunk_size=chunk)
        np.testing.assert_allclose(res.radii, radii, rtol=1e-9, atol=1e-9)
        assert res.candidates.tolist() == want.tolist()
    # the case is not degenerate: at beta = 0 the balls are points, so every unlabeled row is
    # mined; at beta > 0 some rows fall inside a ball and some outside
    if beta == 0.0:
        assert res.candidates.tolist() == list(range(len(u)))
    else:
        assert 0 < len(res.candidates) < len(u)
    # margin > 0 exactly for the mined rows (its documented meaning)
    assert np.flatnonzero(res.margin > 0).tolist() == res.candidates.tolist()


def test_larger_beta_mines_a_subset():
    """Bigger balls cover more: the noisy negatives at a larger beta are a subset of those at a smaller one."""
    rng = np.random.default_rng(3)
    u, p, n = rng.normal(size=(200, 5)), rng.normal(size=(10, 5)), rng.normal(size=(12, 5)) + 1.0
    mined = [
        set(mine_noisy_negatives(u, p, n, beta=b, chunk_size=32).candidates.tolist()) for b in (0.1, 0.4, 0.8, 1.0)
    ]
    assert all(big <= small for small, big in zip(mined, mined[1:]))
    assert len(mined[0]) > len(mined[-1])


def test_float32_inputs_match_float64_reference():
    rng = np.random.default_rng(1)
    u, p, n = (rng.normal(size=(s, 16)).astype(np.float32) for s in (300, 20, 30))
    want, _ = brute_force(u.astype(np.float64), p.astype(np.float64), n.astype(np.float64), 0.5, "euclidean")
    got = mine_noisy_negatives(u, p, n, beta=0.5, chunk_size=64)
    assert got.candidates.tolist() == want.tolist()


def test_edge_cases_no_negatives_or_no_positives():
    u = np.eye(3)
    assert mine_noisy_negatives(u, np.ones((2, 3)), np.zeros((0, 3))).candidates.tolist() == []  # infinite balls
    assert mine_noisy_negatives(u, np.zeros((0, 3)), np.ones((2, 3))).candidates.tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        ball_radii(np.ones((1, 2)), np.ones((1, 2)), beta=1.5)


def test_select_caps_randomly_or_by_margin():
    cand, margin = np.array([0, 2, 3, 5, 8]), np.array([0.1, 0, 0.9, 0.3, 0, 0.5, 0, 0, 0.2])
    assert select(cand, None).tolist() == [0, 2, 3, 5, 8]
    assert select(cand, 2, margin, "farthest").tolist() == [2, 5]
    keys = [f"id{i}" for i in range(9)]
    a = select(cand, 3, margin, "random", keys, seed=0)
    assert len(a) == 3 and set(a) <= set(cand.tolist())
    assert a.tolist() == select(cand, 3, margin, "random", keys, seed=0).tolist()  # stable
    assert select(cand, 0).tolist() == []


def test_embed_texts_caches_by_model_and_text(tmp_path, monkeypatch):
    texts = ["The heel broke off.", "I got a rash.", "The heel broke off."]
    first = embed_texts(texts, "packaged:all-MiniLM-L6-v2", tmp_path, progress=False)
    assert first.shape == (3, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])
    shards = list(tmp_path.rglob("shard-*.npz"))
    assert len(shards) == 1  # one shard holding the 2 distinct texts

    import feedback_nlp.core.model_factory as factory

    class ModelLoaded(Exception):
        pass

    loads: list[str] = []

    def loader(name, *args, **kwargs):
        loads.append(name)
        raise ModelLoaded(name)

    monkeypatch.setattr(factory, "load_sentence_transformer", loader)
    again = embed_texts(texts[:2], "packaged:all-MiniLM-L6-v2", tmp_path, progress=False)
    np.testing.assert_array_equal(again, first[:2])
    assert loads == []  # cached texts never load the model
    # another model name is another cache: the same text must be embedded again, by that model
    with pytest.raises(ModelLoaded, match="^another-model$"):
        embed_texts(texts[:1], "another-model", tmp_path, progress=False)
    assert loads == ["another-model"]
    assert nn_mod.text_key("a") != nn_mod.text_key("b")
