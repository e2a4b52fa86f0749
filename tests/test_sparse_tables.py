"""`--sparse-gradients`: bag members' tables train with sparse gradients and SparseAdam. The
clipping reads them as the dense clipping reads dense ones, and a trained bag exports and serves."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch

from rnnserve_bundle.config import BundleConfig
from tests.conftest import TINY, run_cli
from training.model import BagClassifier
from training.sparse_tables import JointOptimizer, clip_gradients, set_sparse_tables

IDS = torch.tensor([[5, 6, 7, 5, 6], [8, 9, 0, 0, 0], [5, 5, 5, 9, 0]])
LENGTHS = torch.tensor([5, 2, 4])
LABELS = torch.tensor([0, 2, 1])


def _bag() -> BagClassifier:
    torch.manual_seed(0)
    return BagClassifier(vocab_size=12, embedding_dim=8, buckets=64, num_classes=3, dropout=0.0)


def _backward(model: BagClassifier) -> None:
    loss = torch.nn.functional.cross_entropy(model(IDS, LENGTHS), LABELS) * 50  # large: clipping acts
    loss.backward()


def test_sparse_gradients_clip_to_the_same_values_as_dense_ones() -> None:
    dense, sparse = _bag(), _bag()
    tables = set_sparse_tables(sparse, True)
    assert len(tables) == 2 and sparse.embedding.sparse and sparse.pairs.sparse
    _backward(dense)
    _backward(sparse)
    assert sparse.pairs.weight.grad.is_sparse  # repeated rows (5, 5, 5) left uncoalesced by autograd
    torch.nn.utils.clip_grad_norm_(dense.parameters(), 1.0)
    clip_gradients(list(sparse.parameters()), 1.0)
    for want, got in zip(dense.parameters(), sparse.parameters(), strict=True):
        grad = got.grad.to_dense() if got.grad.is_sparse else got.grad
        torch.testing.assert_close(grad, want.grad)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in dense.parameters()]))
    assert abs(float(total) - 1.0) < 1e-4


def test_only_the_rows_a_batch_reads_move() -> None:
    model = _bag()
    tables = set_sparse_tables(model, True)
    before = model.embedding.weight.detach().clone()
    optimizer = JointOptimizer(model, tables, lr=0.1, weight_decay=0.1, fused=False)
    _backward(model)
    optimizer.step()
    moved = (model.embedding.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert moved == [5, 6, 7, 8, 9]  # the words read; the padding row and the unread ones stay


def test_a_bag_trained_with_sparse_gradients_exports_and_evaluates(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "models" / "bag" / "1"
    run_cli("train", "--task", "intent", "--format", "csv", "--data", str(data_dir / "intent.csv"),
            "--text-field", "utterance", "--label-field", "intent", "--out", str(out),
            *TINY, "--ensemble", "0", "--bag-members", "1", "--sparse-gradients")  # fmt: skip
    config = BundleConfig.load(out)
    assert config.training["hyperparameters"]["sparse_gradients"] is True
    assert config.metrics["validation"]["accuracy"] > 0.5 and config.export["max_abs_diff"] < 1e-4
    assert "Mod" in {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    evaluated = run_cli("evaluate", "--model", str(out), "--format", "csv", "--data", str(data_dir / "intent.csv"),
                        "--text-field", "utterance", "--label-field", "intent")  # fmt: skip
    assert json.loads(evaluated.stdout)["accuracy"] > 0.5
