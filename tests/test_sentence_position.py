"""002 §2.3, eqs. 2-3: offset indexing from the agent's first sentence and the sinusoidal table."""

from __future__ import annotations

import math

import pytest
import torch

from feedback_nlp.datamodules.seacat import agent_first_index, offset_positions
from feedback_nlp.nets.sentence_position import SentencePositionEmbedding, sinusoidal_table


def test_agent_first_index():
    assert agent_first_index(["customer", "customer", "agent", "customer", "agent"]) == 2
    assert agent_first_index(["agent", "customer"]) == 0
    assert agent_first_index(["customer", "customer"]) == 2  # no agent: after the last sentence


def test_offsets_are_shifted_by_s_so_the_agent_first_sentence_is_s():
    # -2, -1, 0, +1, +2 relative to the agent's first sentence, shifted by S = 64 (002 §2.4)
    assert offset_positions(["customer", "customer", "agent", "customer", "agent"], 64) == [62, 63, 64, 65, 66]


def test_offsets_are_clipped_to_0_2s():
    speakers = ["customer"] * 5 + ["agent"] + ["customer"] * 5
    assert offset_positions(speakers, 3) == [0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 6]


def test_sinusoidal_table_matches_eqs_2_3():
    d = 6
    table = sinusoidal_table(129, d)
    assert table.shape == (129, d)
    for p in (0, 1, 64, 128):
        for i in range(d // 2):
            assert table[p, 2 * i].item() == pytest.approx(math.sin(p / 10000 ** (2 * i / d)), abs=1e-6)
            assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * i / d)), abs=1e-6)


def test_odd_dimension_keeps_the_sine_for_the_last_component():
    table = sinusoidal_table(5, 5)
    assert table.shape == (5, 5)
    assert table[3, 4].item() == pytest.approx(math.sin(3 / 10000 ** (4 / 5)), abs=1e-6)


def test_embedding_is_a_fixed_lookup_without_parameters():
    pe = SentencePositionEmbedding(max_sentences=4, dim=8)
    assert list(pe.parameters()) == []
    positions = torch.tensor([[4, 5, 0], [8, 4, 4]])
    out = pe(positions)
    assert out.shape == (2, 3, 8)
    assert torch.equal(out[1, 1], sinusoidal_table(9, 8)[4])
    assert "table" not in pe.state_dict()  # derived from settings, not stored in checkpoints
