"""Lookup tables stored as int8 with one scale per row; the arithmetic stays float32.

A classifier's graph is mostly its lookup tables: each member of the intent default keeps its own
word table, and the bag member a table of hashed word-pair vectors (`training/model.py`), together
nearly all of the graph (sizes in REPORT.md). Stored per row as int8 and a float scale, every looked-up vector is
rebuilt as `int8 * scale` before anything else reads it, so the error of each element is at most
half a step of its own row (1/254 of the row's largest magnitude), where ONNX Runtime's dynamic
quantizer (`training/quantize.py`) uses one scale for a whole table and also turns the matrix
products into integer arithmetic. The rewritten nodes (Gather, Cast, Mul) run on every execution
provider, CUDA included.

Only a table that nothing but lookups reads is rewritten: a tied next-word embedding, which the
output layer also multiplies by, stays float32. Each rewritten graph is run against its float
version on a real padded batch before it ships; one that disagrees stays float32 with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.graph_rewrite import NothingToRewrite, rewrite_verified

# The rewritten graph must pick the same top answer as the float one on (almost) every text of
# the check's batch; the recorded `max_abs_change` says by how much the log-probabilities moved.
MIN_TOP1_AGREEMENT = 0.99


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: `table ≈ codes * scales`. An all-zero row (padding) stays exactly zero."""
    peak = np.abs(table).max(axis=1, keepdims=True)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(table / scales), -127, 127).astype(np.int8)
    return codes, scales


def _lookup_only_tables(model: onnx.ModelProto) -> set[str]:
    """2-D float initializers read only as the data of axis-0 Gather nodes."""
    subgraphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(a.type in subgraphs for node in model.graph.node for a in node.attribute):
        return set()  # a table read inside an If/Loop body would not be seen below: leave it be
    floats = {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and len(i.dims) == 2}
    looked_up: set[str] = set()
    blocked: set[str] = set()
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            if name not in floats:
                continue
            axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
            if node.op_type == "Gather" and position == 0 and axis == 0:
                looked_up.add(name)
            else:
                blocked.add(name)
    return looked_up - blocked


def rewrite(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The graph with each lookup-only table as int8 codes and row scales; and how many tables."""
    tables = _lookup_only_tables(model)
    if not tables:
        return model, 0
    kept = [i for i in model.graph.initializer if i.name not in tables]
    added = []
    for initializer in model.graph.initializer:
        if initializer.name in tables:
            codes, scales = quantize_rows(numpy_helper.to_array(initializer))
            added += [
                numpy_helper.from_array(codes, f"{initializer.name}.int8"),
                numpy_helper.from_array(scales, f"{initializer.name}.scale"),
            ]
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Gather" and node.input[0] in tables:
            table, indices, out = node.input[0], node.input[1], node.output[0]
            nodes += [
                helper.make_node("Gather", [f"{table}.int8", indices], [f"{out}.int8"], axis=0),
                helper.make_node("Gather", [f"{table}.scale", indices], [f"{out}.scale"], axis=0),
                helper.make_node("Cast", [f"{out}.int8"], [f"{out}.codes"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{out}.codes", f"{out}.scale"], [out]),
            ]
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend([*kept, *added])
    del model.graph.value_info[:]  # shapes recorded for the replaced nodes' outputs no longer hold
    onnx.checker.check_model(model)
    return model, len(tables)


def compact_bundle(directory: Path, sample: list[list[int]]) -> dict:
    """Rewrite each of the bundle's graphs in place; returns what was done per file."""

    def compact(float_path: Path, out: Path) -> dict:
        model, count = rewrite(onnx.load(str(float_path)))
        if count == 0:
            raise NothingToRewrite("no table that only lookups read")
        onnx.save(model, str(out))
        return {"tables": count}

    files = rewrite_verified(directory, sample, compact, MIN_TOP1_AGREEMENT)
    return {"method": "lookup tables as int8 with a float32 scale per row; arithmetic in float32", "files": files}
