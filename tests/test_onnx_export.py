import numpy as np
import pytest
import torch

from feedback_nlp.serving.onnx_export import OnnxGraph, OnnxMismatchError, export_graph


class Scorer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 8)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, ids, mask):
        h = (self.emb(ids) * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return torch.softmax(self.out(h), -1)


def test_export_matches_eager_with_dynamic_batch(tmp_path):
    import onnxruntime as ort

    m = Scorer()
    inputs = {"ids": torch.randint(0, 50, (3, 7)), "mask": torch.ones(3, 7)}
    other = {"ids": torch.randint(0, 50, (2, 9)), "mask": torch.ones(2, 9)}
    diff = export_graph(
        OnnxGraph(
            "m.onnx",
            m,
            inputs,
            ["probs"],
            checks=[other],
            dynamic_axes={"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}, "probs": {0: "batch"}},
        ),
        tmp_path,
    )
    assert diff < 1e-5
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    ids, mask = torch.randint(0, 50, (5, 4)), torch.ones(5, 4)
    (got,) = sess.run(["probs"], {"ids": ids.numpy(), "mask": mask.numpy()})
    np.testing.assert_allclose(got, m(ids, mask).detach().numpy(), atol=1e-5)


def test_mismatch_is_rejected_and_nothing_left(tmp_path, monkeypatch):
    import onnxruntime as ort

    real = ort.InferenceSession

    class Skewed:
        def __init__(self, *a, **k):
            self.s = real(*a, **k)

        def get_inputs(self):
            return self.s.get_inputs()

        def run(self, names, feeds):
            return [o + 0.1 for o in self.s.run(names, feeds)]

    monkeypatch.setattr(ort, "InferenceSession", Skewed)
    with pytest.raises(OnnxMismatchError, match="differs from eager"):
        export_graph(
            OnnxGraph("m.onnx", Scorer(), {"ids": torch.randint(0, 50, (2, 3)), "mask": torch.ones(2, 3)}, ["probs"]),
            tmp_path,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_shape_baked_in_at_trace_time_is_caught_on_the_check_batch(tmp_path):
    """Without dynamic axes the graph only accepts the traced shape: the check batch of another
    shape must fail the export, and nothing is kept."""
    m = Scorer()
    with pytest.raises(OnnxMismatchError, match="onnxruntime fails on a batch of shape"):
        export_graph(
            OnnxGraph(
                "m.onnx",
                m,
                {"ids": torch.randint(0, 50, (3, 7)), "mask": torch.ones(3, 7)},
                ["probs"],
                checks=[{"ids": torch.randint(0, 50, (5, 4)), "mask": torch.ones(5, 4)}],
            ),
            tmp_path,
        )
    assert list(tmp_path.iterdir()) == []
