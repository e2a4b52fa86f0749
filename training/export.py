"""ONNX export with dynamic batch and sequence axes, verified against PyTorch on real padded
batches of mixed lengths. A mismatch raises `ExportError`: a wrong model must never ship."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE, STEP_MODEL_FILE
from rnnserve_bundle.sessions import CPU, create_session
from training.batching import pad
from training.model import EnsembleClassifier, NextWordGraph, RNNClassifier, RNNLanguageModel, StepGraph

log = logging.getLogger(__name__)

OPSET = 18
TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model."""


def _dynamic_inputs_ok(path: Path, dynamic: tuple) -> bool:
    """Every axis that should be dynamic came out symbolic in the ONNX graph."""
    graph = onnx.load(str(path), load_external_data=False).graph
    specs = [dynamic[0], *(dynamic[1] if isinstance(dynamic[1], tuple) else dynamic[1:])]
    for tensor, axes in zip(graph.input, specs, strict=False):
        dims = tensor.type.tensor_type.shape.dim
        if any(not dims[axis].dim_param for axis in axes):
            return False
    return True


def share_transposed_weights(path: Path) -> None:
    """Store a weight once when the graph also holds its transpose as a constant (tied embeddings
    after the TorchScript exporter's constant folding): the copy becomes a `Transpose` node, which
    ONNX Runtime folds again when it loads the graph."""
    model = onnx.load(str(path))
    matrices = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if len(i.dims) == 2}
    replaced = {}
    for name, array in matrices.items():
        for source, other in matrices.items():
            fresh = source != name and source not in replaced
            if fresh and array.shape == other.T.shape and np.array_equal(array, other.T):
                replaced[name] = source
                break
    if not replaced:
        return
    kept = [i for i in model.graph.initializer if i.name not in replaced]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    for index, (name, source) in enumerate(replaced.items()):
        model.graph.node.insert(index, helper.make_node("Transpose", [source], [name], perm=[1, 0]))
    onnx.save(model, str(path))


def _export(
    module: torch.nn.Module,
    args: tuple,
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: tuple,
) -> None:
    """Export with torch.export; where it specialises a dynamic axis (it does for some stacked or
    state-carrying RNN graphs), export again with the TorchScript exporter, which keeps them."""
    # The exporters narrate their passes on stdout; keep stdout for the CLI's JSON.
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=dynamic,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
        )
        if _dynamic_inputs_ok(path, dynamic):
            return
        log.info("%s: torch.export fixed a dynamic axis; using the TorchScript exporter", path.name)
        specs = [dynamic[0], *(dynamic[1] if isinstance(dynamic[1], tuple) else dynamic[1:])]
        # Axis 1 of the ids is the sequence; every other dynamic axis is the batch.
        axes = {
            name: {axis: "sequence" if (name == inputs[0] and axis == 1) else "batch" for axis in spec}
            for name, spec in zip(inputs, specs, strict=False)
        }
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    if not _dynamic_inputs_ok(path, dynamic):
        raise ExportError(f"{path.name}: the exported graph has fixed batch or sequence axes")
    share_transposed_weights(path)


def _check(name: str, expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    worst = 0.0
    for want, got in zip(expected, actual, strict=True):
        if want.shape != got.shape:
            raise ExportError(f"{name}: ONNX output shape {got.shape} != PyTorch {want.shape}")
        difference = float(np.abs(want - got).max())
        scale = max(1.0, float(np.abs(want).max()))
        if not difference <= TOLERANCE * scale:
            raise ExportError(
                f"{name}: ONNX Runtime differs from PyTorch by {difference:.3g} (tolerance "
                f"{TOLERANCE * scale:.3g}) on a padded batch of mixed lengths"
            )
        worst = max(worst, difference)
    return worst


def mixed_length_sample(ids: list[list[int]], count: int = 16) -> list[list[int]]:
    """Real sequences spread across the length range, so the check exercises heavy padding."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    picks = np.linspace(0, len(order) - 1, num=min(count, len(order))).round().astype(int)
    sample = [ids[order[p]] for p in picks]
    if len(sample) < 2:
        sample = sample * 2
    if len({len(s) for s in sample}) < 2:  # guarantee padding even on uniform data
        sample[0] = sample[0][: max(1, len(sample[0]) - 1)] if len(sample[0]) > 1 else sample[0] * 2
    return sample[::-1]  # longest first is irrelevant to the graphs; mix the order anyway


def _dims() -> tuple[torch.export.Dim, torch.export.Dim]:
    return torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("sequence", min=1, max=4096)


def parity_batches(sample: list[list[int]]) -> list[list[list[int]]]:
    """The export sample and a second batch of another size and padded length, so that a graph
    whose axes were fixed to the sample's shape fails the check."""
    longest = max(len(s) for s in sample)
    other = [s[: max(1, longest - 1)] for s in sample[1::2]] or [sample[0][:1]]
    return [sample, other]


def export_classifier(model: RNNClassifier | EnsembleClassifier, directory: Path, sample: list[list[int]]) -> dict:
    model.eval()
    ids, lengths = pad(sample)
    batch, sequence = _dims()
    path = directory / MODEL_FILE
    args = (torch.from_numpy(ids), torch.from_numpy(lengths))
    _export(model, args, path, [INPUT_IDS, LENGTHS], [LOGITS], ({0: batch, 1: sequence}, {0: batch}))
    session = create_session(path, [CPU])
    worst = 0.0
    for batch_ids in parity_batches(sample):
        ids, lengths = pad(batch_ids)
        with torch.no_grad():
            expected = [model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()]
        actual = session.run([LOGITS], {INPUT_IDS: ids, LENGTHS: lengths})
        worst = max(worst, _check(MODEL_FILE, expected, actual))
    return {
        "opset": OPSET,
        "max_abs_diff": worst,
        "parity_batch": len(sample),
        "parity_lengths": sorted({len(s) for s in sample}),
    }


def state_names(cell: str) -> tuple[list[str], list[str]]:
    if cell == "lstm":
        return ["state_h", "state_c"], ["next_state_h", "next_state_c"]
    return ["state_h"], ["next_state_h"]


def export_language_model(model: RNNLanguageModel, directory: Path, sample: list[list[int]]) -> dict:
    """`model.onnx`: next-word logits after each prefix; `step.onnx`: read a chunk from a state."""
    model.eval()
    ids, lengths = pad(sample)
    args = (torch.from_numpy(ids), torch.from_numpy(lengths))
    batch, sequence = _dims()
    next_word = NextWordGraph(model).eval()
    _export(
        next_word,
        args,
        directory / MODEL_FILE,
        [INPUT_IDS, LENGTHS],
        [LOGITS],
        ({0: batch, 1: sequence}, {0: batch}),
    )
    inputs, outputs = state_names(model.cell)
    layers, hidden = model.rnn.num_layers, model.rnn.hidden_size
    generator = torch.Generator().manual_seed(0)

    def random_states(size: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.randn(layers, size, hidden, generator=generator) * 0.5 for _ in inputs)

    step = StepGraph(model).eval()
    _export(
        step,
        (args[0], *random_states(len(sample))),
        directory / STEP_MODEL_FILE,
        [INPUT_IDS, *inputs],
        [LOGITS, *outputs],
        ({0: batch, 1: sequence}, tuple({1: batch} for _ in inputs)),
    )
    session = create_session(directory / MODEL_FILE, [CPU])
    step_session = create_session(directory / STEP_MODEL_FILE, [CPU])
    worst = 0.0
    for batch_ids in parity_batches(sample):
        ids, lengths = pad(batch_ids)
        ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
        states = random_states(len(batch_ids))
        with torch.no_grad():
            expected_next = [next_word(ids_t, lengths_t).numpy()]
            expected_step = [t.numpy() for t in step(ids_t, *states)]
        actual = session.run([LOGITS], {INPUT_IDS: ids, LENGTHS: lengths})
        worst = max(worst, _check(MODEL_FILE, expected_next, actual))
        feeds = {INPUT_IDS: ids, **{n: t.numpy() for n, t in zip(inputs, states, strict=True)}}
        actual_step = step_session.run([LOGITS, *outputs], feeds)
        worst = max(worst, _check(STEP_MODEL_FILE, expected_step, actual_step))
    return {
        "opset": OPSET,
        "max_abs_diff": worst,
        "parity_batch": len(sample),
        "parity_lengths": sorted({len(s) for s in sample}),
        "step_model": {
            "inputs": [INPUT_IDS, *inputs],
            "outputs": [LOGITS, *outputs],
            "state_shape": ["num_layers", "batch", hidden],
        },
    }
