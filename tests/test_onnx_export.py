import numpy as np
import pytest
import torch

from feedback_nlp.common.onnx_export import OnnxMismatchError, export_onnx


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
    diffs = export_onnx(m, inputs, tmp_path / "m.onnx", ["probs"],
                        {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}, "probs": {0: "batch"}})
    assert diffs["probs"] < 1e-5
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

        def run(self, names, feeds):
            return [o + 0.1 for o in self.s.run(names, feeds)]

    monkeypatch.setattr(ort, "InferenceSession", Skewed)
    with pytest.raises(OnnxMismatchError, match="differs from eager"):
        export_onnx(Scorer(), {"ids": torch.randint(0, 50, (2, 3)), "mask": torch.ones(2, 3)},
                    tmp_path / "m.onnx", ["probs"], {})
    assert list(tmp_path.iterdir()) == []
