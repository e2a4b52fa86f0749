"""Lookup tables stored as int8 rows: what is rewritten, what is left alone, and the guard that keeps
a graph float32 when the rewrite would change its answers. The graphs run in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE
from rnnserve_bundle.sessions import CPU, create_session
from rnnserve_bundle.tensors import pad_batch
from training import lookup_tables
from training.lookup_tables import compact_bundle, quantize_rows

VOCAB, DIM, CLASSES = 50, 16, 5
SAMPLE = [[3, 4, 5, 6], [7, 8], [9, 10, 11], [12], [13, 14, 15, 16, 17], [18, 19]] * 3


def test_rows_round_trip_within_half_a_step_of_their_own_scale() -> None:
    table = np.random.default_rng(0).normal(size=(VOCAB, DIM)).astype(np.float32)
    table[7] *= 1000  # one large row does not coarsen the others, as a single table scale would
    table[0] = 0  # the padding row
    codes, scales = quantize_rows(table)
    assert codes.dtype == np.int8 and scales.shape == (VOCAB, 1)
    error = np.abs(codes * scales - table)
    assert (error <= scales / 2 + 1e-6 * np.abs(table)).all()
    assert not (codes[0] * scales[0]).any()
    assert error[1:7].max() < 0.05


def _graph(directory: Path, tied: bool) -> tuple[np.ndarray, np.ndarray]:
    """ids -> mean of looked-up vectors -> logits, by a class matrix or (tied) by the table itself."""
    rng = np.random.default_rng(1)
    words = rng.normal(size=(VOCAB, DIM)).astype(np.float32)
    head = rng.normal(size=(CLASSES, DIM)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["words", INPUT_IDS], ["vectors"]),
        helper.make_node("ReduceMean", ["vectors", "axes"], ["mean"], keepdims=0),
        helper.make_node("Gemm", ["mean", "words" if tied else "head"], [LOGITS], transB=1),
        helper.make_node("Identity", [LENGTHS], ["lengths_seen"]),
    ]
    graph = helper.make_graph(
        nodes,
        "lookup",
        [
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(LENGTHS, TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", None]),
            helper.make_tensor_value_info("lengths_seen", TensorProto.INT64, ["batch"]),
        ],
        [
            numpy_helper.from_array(words, "words"),
            numpy_helper.from_array(head, "head"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(directory / MODEL_FILE))
    return words, head


def _logits(directory: Path) -> np.ndarray:
    ids, lengths = pad_batch(SAMPLE)
    session = create_session(directory / MODEL_FILE, [CPU])
    return session.run([LOGITS], {INPUT_IDS: ids, LENGTHS: lengths})[0]


def test_a_table_only_lookups_read_becomes_int8_rows_and_answers_the_same(tmp_path: Path) -> None:
    _graph(tmp_path, tied=False)
    before = _logits(tmp_path)
    report = compact_bundle(tmp_path, SAMPLE)["files"][MODEL_FILE]
    after = _logits(tmp_path)
    assert report["tables"] == 1 and report["top1_agreement"] == 1.0
    assert report["bytes"] < report["fp32_bytes"]
    assert report["max_abs_change"] == pytest.approx(float(np.abs(before - after).max()))
    assert 0 < report["max_abs_change"] < 0.05 and (before.argmax(1) == after.argmax(1)).all()
    stored = {i.name: i.data_type for i in onnx.load(str(tmp_path / MODEL_FILE)).graph.initializer}
    assert stored["words.int8"] == TensorProto.INT8 and "words" not in stored
    assert stored["head"] == TensorProto.FLOAT  # a matrix product's weights stay float32


def test_a_table_another_node_also_reads_stays_float32(tmp_path: Path) -> None:
    _graph(tmp_path, tied=True)  # a tied embedding: the output layer multiplies by the table
    before = (tmp_path / MODEL_FILE).read_bytes()
    report = compact_bundle(tmp_path, SAMPLE)["files"][MODEL_FILE]
    assert report["kept"] == "float32" and "only lookups" in report["reason"]
    assert (tmp_path / MODEL_FILE).read_bytes() == before


def test_a_rewrite_that_changes_the_answers_never_ships(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _graph(tmp_path, tied=False)
    before = (tmp_path / MODEL_FILE).read_bytes()

    def broken(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, scales = quantize_rows(table)
        return -codes, scales  # every vector negated: the argmax moves

    monkeypatch.setattr(lookup_tables, "quantize_rows", broken)
    report = compact_bundle(tmp_path, SAMPLE)["files"][MODEL_FILE]
    assert report["kept"] == "float32" and "top-1 agrees" in report["reason"]
    assert (tmp_path / MODEL_FILE).read_bytes() == before
    assert not list(tmp_path.glob(".*fp32"))
