"""The training CLI end to end: bundles, held-out metrics, export parity, clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rnnserve_bundle.config import BundleConfig
from tests.conftest import TINY, TINY_LM, run_cli
from training.defaults import BAG_RECIPE
from training.export import ExportError, _check


@pytest.mark.parametrize("name", ["sentiment", "intent", "next-word"])
def test_bundle_layout_and_config(model_repository: Path, name: str) -> None:
    bundle = model_repository / name / "1"
    config = BundleConfig.load(bundle)
    assert config.name == name and config.version == "1"
    assert (bundle / "model.onnx").is_file() and (bundle / "tokenizer.json").is_file()
    assert config.export["max_abs_diff"] < 1e-4
    assert len(config.export["parity_lengths"]) > 1  # the check ran on mixed lengths
    assert config.versions["torch"] and config.versions["onnxruntime"]
    assert config.data["validation_examples"] > 0 and config.data["sha256"]
    graph = onnx.load(str(bundle / "model.onnx"))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims), "batch and sequence axes must be dynamic"
    ops = {n.op_type for n in graph.graph.node}
    assert ops & {"LSTM", "GRU"}
    # Classifiers store their word table as int8 rows by default; next-word's table is tied to its
    # output layer, so it stays float32 and no rewrite is recorded.
    int8 = [i.name for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    if name == "next-word":
        assert not int8 and "lookup_tables" not in config.export
    else:
        assert int8 == ["embedding.weight.int8"]
        assert config.export["lookup_tables"]["files"]["model.onnx"]["top1_agreement"] >= 0.99


def test_classifier_metrics_are_real(model_repository: Path) -> None:
    sentiment = BundleConfig.load(model_repository / "sentiment" / "1")
    assert sentiment.labels == ["negative", "positive"]
    assert sentiment.metrics["validation"]["accuracy"] > 0.9
    intent = BundleConfig.load(model_repository / "intent" / "1")
    assert intent.architecture.cell == "gru"
    for config in (sentiment, intent):  # temperature scaling fitted on the validation logits
        assert config.calibration is not None and config.calibration.temperature > 0
        assert config.calibration.ece_after <= config.calibration.ece_before + 0.02
        assert 0 <= config.metrics["validation"]["expected_calibration_error"] <= 1
    assert intent.metrics["validation"]["macro_f1"] > 0.9


def test_language_model_has_step_graph_and_perplexity(model_repository: Path) -> None:
    bundle = model_repository / "next-word" / "1"
    config = BundleConfig.load(bundle)
    assert (bundle / "step.onnx").is_file()
    for graph_file in ("model.onnx", "step.onnx"):
        graph = onnx.load(str(bundle / graph_file)).graph
        for tensor in graph.input:
            dims = [d.dim_param or d.dim_value for d in tensor.type.tensor_type.shape.dim]
            symbolic = [d for d in dims if isinstance(d, str)]
            assert len(symbolic) == (2 if tensor.name == "input_ids" else 1), (
                graph_file,
                tensor.name,
                dims,
            )
    assert config.architecture.tied_embeddings
    metrics = config.metrics["validation"]
    # A uniform guess over the vocabulary would score the vocabulary size.
    assert 1.0 < metrics["perplexity"] < config.vocab_size / 2
    assert 0 < metrics["top1_accuracy"] <= metrics["top5_accuracy"] <= 1


def test_evaluate_prints_one_json_object(model_repository: Path, data_dir: Path) -> None:
    result = run_cli(
        "evaluate",
        "--model",
        str(model_repository / "sentiment" / "1"),
        "--format",
        "sst2",
        "--data",
        str(data_dir / "sst2"),
        "--split",
        "train",
    )
    metrics = json.loads(result.stdout)
    assert set(metrics) >= {"accuracy", "macro_f1"}
    result = run_cli(
        "evaluate",
        "--model",
        str(model_repository / "next-word" / "1"),
        "--format",
        "text",
        "--data",
        str(data_dir / "text"),
        "--split",
        "valid",
    )
    metrics = json.loads(result.stdout)
    assert set(metrics) >= {"perplexity", "top1_accuracy", "top5_accuracy"}
    assert metrics["perplexity"] == pytest.approx(
        BundleConfig.load(model_repository / "next-word" / "1").metrics["validation"]["perplexity"]
    )


def test_train_on_user_csv(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "models" / "support" / "3"
    run_cli(
        "train",
        "--task",
        "intent",
        "--format",
        "csv",
        "--data",
        str(data_dir / "intent.csv"),
        "--text-field",
        "utterance",
        "--label-field",
        "intent",
        "--out",
        str(out),
        *TINY,
    )
    config = BundleConfig.load(out)
    assert config.name == "support" and config.version == "3"
    assert config.labels == ["booking", "music", "weather"]
    assert config.metrics["validation"]["accuracy"] > 0.9


def test_rdrop_trains_a_classifier_and_is_refused_elsewhere(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "models" / "support" / "1"
    data = ["--format", "csv", "--data", str(data_dir / "intent.csv"), "--text-field", "utterance",
            "--label-field", "intent"]  # fmt: skip
    run_cli("train", "--task", "intent", *data, "--out", str(out), *TINY, "--rdrop", "0.5")
    config = BundleConfig.load(out)
    assert config.training["hyperparameters"]["rdrop"] == 0.5
    assert config.metrics["validation"]["accuracy"] > 0.9

    for task, value in [("intent", "-1"), ("intent", "nan"), ("intent", "inf"), ("next-word", "1")]:
        source = data if task == "intent" else ["--format", "text", "--data", str(data_dir / "text")]
        refused = run_cli("train", "--task", task, *source, "--out", str(tmp_path / "m" / "x" / "1"),
                          "--rdrop", value, check=False)  # fmt: skip
        assert refused.returncode == 2 and "--rdrop" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_data_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "label": "a"}\n{"text": "oops"}\n', encoding="utf-8")
    result = run_cli(
        "train",
        "--task",
        "intent",
        "--format",
        "jsonl",
        "--data",
        str(bad),
        "--out",
        str(tmp_path / "m" / "x" / "1"),
        check=False,
    )
    assert result.returncode == 2
    assert "bad.jsonl:2: missing label field 'label'" in result.stderr
    assert "Traceback" not in result.stderr
    evaluate = run_cli(
        "evaluate",
        "--model",
        str(tmp_path / "nowhere"),
        "--format",
        "jsonl",
        "--data",
        str(bad),
        check=False,
    )
    assert evaluate.returncode == 2 and "Traceback" not in evaluate.stderr
    # Next-word text too short to cut into the stream's rows: a message that says what to change.
    short = tmp_path / "short.txt"
    short.write_text("a few words\nand a few more\n", encoding="utf-8")
    streamed = run_cli(
        "train", "--task", "next-word", "--format", "text", "--data", str(short), "--valid-data", str(short),
        "--out", str(tmp_path / "m" / "words" / "1"), check=False,
    )  # fmt: skip
    assert streamed.returncode == 2 and "--bptt 0" in streamed.stderr and "Traceback" not in streamed.stderr


def test_step_graph_runs_any_length_and_carries_state(model_repository: Path) -> None:
    """Reading a sequence in two chunks with the state carried equals reading it at once."""
    import onnxruntime as ort

    bundle = model_repository / "next-word" / "1"
    config = BundleConfig.load(bundle)
    session = ort.InferenceSession(str(bundle / "step.onnx"), providers=["CPUExecutionProvider"])
    layers, hidden = config.architecture.num_layers, config.architecture.hidden_size
    ids = np.array([[2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]], dtype=np.int64)  # a length no export used
    zeros = np.zeros((layers, 1, hidden), dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    whole = session.run(None, {"input_ids": ids, "state_h": zeros, "state_c": zeros})
    first = dict(
        zip(
            names,
            session.run(None, {"input_ids": ids[:, :4], "state_h": zeros, "state_c": zeros}),
            strict=True,
        )
    )
    second = session.run(
        None,
        {"input_ids": ids[:, 4:], "state_h": first["next_state_h"], "state_c": first["next_state_c"]},
    )
    np.testing.assert_allclose(whole[0][:, 4:], second[0], atol=1e-4)


def test_export_check_fails_loudly_on_mismatch() -> None:
    expected = [np.zeros((2, 3), dtype=np.float32)]
    assert _check("model.onnx", expected, [expected[0] + 1e-7]) < 1e-6
    with pytest.raises(ExportError, match="differs from PyTorch"):
        _check("model.onnx", expected, [expected[0] + 0.5])


def test_clinc150_training_reports_out_of_scope_metrics(tmp_path: Path) -> None:
    from tests import fixtures

    data = fixtures.write_clinc(tmp_path / "clinc" / "data_full.json")
    out = tmp_path / "models" / "bot" / "1"
    run_cli(
        "train",
        "--task",
        "intent",
        "--format",
        "clinc150",
        "--data",
        str(data),
        "--out",
        str(out),
        *TINY,
    )
    config = BundleConfig.load(out)
    assert "oos" in config.labels
    # No --valid-data: a CLINC150 file validates on its own val split, and all of train trains.
    assert config.data["validation_examples"] == 80 + 20
    assert config.data["train_examples"] == 240 + 60
    assert config.data["validation_source"].endswith("its own validation split")
    assert {"in_scope_accuracy", "oos_recall"} <= set(config.metrics["validation"])
    # By default the class is joined by a threshold chosen on validation at the default point.
    rule = config.out_of_scope
    assert rule is not None and rule.method == "class+threshold" and rule.operating_point == "in-scope-cost=0.005"
    assert rule.validation["in_scope_accuracy"] >= rule.curve[0][1] - 0.005 - 1e-9
    assert len(rule.curve) > 5 and rule.validation["in_scope_accuracy"] == pytest.approx(
        config.metrics["validation"]["in_scope_accuracy"]
    )
    result = run_cli("evaluate", "--model", str(out), "--format", "clinc150", "--data", str(data), "--split", "test")
    metrics = json.loads(result.stdout)
    assert metrics["in_scope_accuracy"] > 0.9 and metrics["oos_recall"] > 0.5


def test_operating_point_moves_the_out_of_scope_threshold(tmp_path: Path) -> None:
    """The documented option: the curve's point with the most out-of-scope recall that keeps the
    asked in-scope accuracy on validation, recorded in config.json."""
    from tests import fixtures

    data = fixtures.write_clinc(tmp_path / "clinc" / "data_full.json")
    common = ["train", "--task", "intent", "--format", "clinc150", "--data", str(data), "--valid-data", str(data)]
    out = tmp_path / "models" / "bot" / "1"
    run_cli(*common, "--oos-operating-point", "oos-recall=1.0", "--out", str(out), *TINY)
    rule = BundleConfig.load(out).out_of_scope
    assert rule is not None and rule.operating_point == "oos-recall=1"
    curve = np.array(rule.curve)
    reachable = curve[curve[:, 2] >= 1.0]
    if len(reachable):
        assert rule.validation["oos_recall"] == 1.0
        assert rule.validation["in_scope_accuracy"] >= reachable[:, 1].max() - 1e-9
    bad = run_cli(*common, "--oos-operating-point", "recall=2", "--out", str(out), *TINY, check=False)
    assert bad.returncode == 2 and "operating point" in bad.stderr

    # Moved after training, on validation data, without retraining: the same model, another point.
    weights = (out / "model.onnx").read_bytes()
    rule_args = ["oos-rule", "--model", str(out), "--format", "clinc150", "--data", str(data), "--split", "val"]
    moved = run_cli(*rule_args, "--oos-operating-point", "in-scope-accuracy=0.5")
    rule = BundleConfig.load(out).out_of_scope
    assert json.loads(moved.stdout)["out_of_scope"]["threshold"] == rule.threshold
    assert rule.operating_point == "in-scope-accuracy=0.5" and rule.validation["in_scope_accuracy"] >= 0.5
    evaluated = json.loads(
        run_cli("evaluate", "--model", str(out), "--format", "clinc150", "--data", str(data), "--split", "val").stdout
    )
    assert evaluated["oos_recall"] == pytest.approx(rule.validation["oos_recall"])
    assert BundleConfig.load(out).metrics["validation"]["oos_recall"] == pytest.approx(rule.validation["oos_recall"])
    assert (out / "model.onnx").read_bytes() == weights
    bad_point = run_cli(*rule_args, "--oos-operating-point", "recall=2", check=False)
    assert bad_point.returncode == 2 and "operating point" in bad_point.stderr
    no_oos = tmp_path / "no-oos.jsonl"
    no_oos.write_text('{"text": "play jazz", "label": "play_music"}\n', encoding="utf-8")
    refused = run_cli("oos-rule", "--model", str(out), "--format", "jsonl", "--data", str(no_oos),
                      "--oos-operating-point", "balanced", check=False)  # fmt: skip
    assert refused.returncode == 2 and "no out-of-scope examples" in refused.stderr


def test_out_of_scope_by_threshold_trains_evaluates_and_serves(tmp_path: Path) -> None:
    """The mechanism end to end: the threshold chosen on validation is the one evaluation and the
    service apply. (How well a threshold separates out-of-scope texts depends on the model and
    data; the tiny fixture model is confident on everything, so quality is not asserted here.)"""
    import httpx

    from tests import fixtures
    from tests.conftest import Server

    data = fixtures.write_clinc(tmp_path / "clinc" / "data_full.json")
    out = tmp_path / "models" / "bot" / "1"
    run_cli(
        "train",
        "--task",
        "intent",
        "--format",
        "clinc150",
        "--data",
        str(data),
        "--valid-data",
        str(data),
        "--oos-threshold",
        "--out",
        str(out),
        *TINY,
    )
    config = BundleConfig.load(out)
    assert "oos" not in config.labels  # never trained as a class
    assert config.out_of_scope is not None and 0 <= config.out_of_scope.threshold <= 1
    evaluated = json.loads(
        run_cli("evaluate", "--model", str(out), "--format", "clinc150", "--data", str(data), "--split", "val").stdout
    )
    for key in ("in_scope_accuracy", "oos_recall"):
        assert evaluated[key] == pytest.approx(config.out_of_scope.validation[key])
    # The default point: at most 0.005 of the in-scope accuracy that no threshold gives.
    rule = config.out_of_scope
    assert rule.operating_point == "in-scope-cost=0.005" and rule.curve[0][0] == 0 and rule.curve[0][2] == 0
    assert evaluated["in_scope_accuracy"] >= rule.curve[0][1] - 0.005 - 1e-9

    server = Server(out.parent.parent)
    try:
        server.wait_ready()
        texts = [*fixtures.OUT_OF_SCOPE, "play some jazz", "will it rain in oslo", "book a table in rome"]
        outputs = httpx.post(f"{server.url}/predict", json={"model": "bot", "inputs": texts}, timeout=30).json()[
            "outputs"
        ]
        for output in outputs:
            if output["label"] == "oos":  # score: 1 - the best in-scope intent's probability
                assert output["out_of_scope"] is True
                best = output["alternatives"][0]
                assert 1 - output["score"] == pytest.approx(best["score"])
                assert best["score"] < config.out_of_scope.threshold
                assert all(a["label"] in config.labels for a in output["alternatives"])
            else:
                assert output["score"] >= config.out_of_scope.threshold and output["label"] in config.labels
                assert "out_of_scope" not in output
    finally:
        server.stop()


def test_oos_threshold_needs_out_of_scope_validation_examples(tmp_path: Path, data_dir: Path) -> None:
    result = run_cli(
        "train",
        "--task",
        "intent",
        "--format",
        "csv",
        "--data",
        str(data_dir / "intent.csv"),
        "--text-field",
        "utterance",
        "--label-field",
        "intent",
        "--oos-threshold",
        "--out",
        str(tmp_path / "m" / "x" / "1"),
        check=False,
    )
    assert result.returncode == 2 and "needs out-of-scope examples" in result.stderr


def test_int8_quantization_is_measured_and_served(tmp_path: Path, data_dir: Path) -> None:
    import httpx

    from tests.conftest import Server

    out = tmp_path / "models" / "small" / "1"
    run_cli(
        "train",
        "--task",
        "sentiment",
        "--format",
        "sst2",
        "--data",
        str(data_dir / "sst2"),
        "--quantize",
        "int8",
        "--out",
        str(out),
        *TINY,
    )
    config = BundleConfig.load(out)
    files = config.quantization["files"]["model.onnx"]
    assert files["int8_bytes"] < files["fp32_bytes"]
    assert abs(config.quantization["validation_change"]["accuracy"]) < 0.05
    assert config.metrics["validation_fp32"]["accuracy"] > 0.9
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "DequantizeLinear"}
    assert "lookup_tables" not in config.export  # the quantizer makes the tables int8 itself
    server = Server(out.parent.parent)
    try:
        server.wait_ready()
        body = {"model": "small", "inputs": ["the movie was wonderful", "this film was awful"]}
        outputs = httpx.post(f"{server.url}/predict", json=body, timeout=30).json()["outputs"]
        assert [o["label"] for o in outputs] == ["positive", "negative"]
    finally:
        server.stop()


def test_int8_quantization_of_a_language_model_never_ships_a_broken_graph(tmp_path: Path, data_dir: Path) -> None:
    """Tied embeddings defeat ONNX Runtime's quantizer on some graphs: each graph is either int8 and
    verified against float32, or kept float32 with the reason; the bundle evaluates either way."""
    out = tmp_path / "models" / "words" / "1"
    run_cli(
        "train",
        "--task",
        "next-word",
        "--format",
        "text",
        "--data",
        str(data_dir / "text" / "train.txt"),
        "--valid-data",
        str(data_dir / "text" / "valid.txt"),
        "--layers",
        "1",
        "--quantize",
        "int8",
        "--out",
        str(out),
        *TINY_LM,
    )
    config = BundleConfig.load(out)
    for name, result in config.quantization["files"].items():
        assert result.get("kept") == "float32" or result["top1_agreement"] >= 0.9, (name, result)
    metrics = json.loads(
        run_cli(
            "evaluate", "--model", str(out), "--format", "text", "--data", str(data_dir / "text"), "--split", "valid"
        ).stdout
    )
    assert metrics["perplexity"] == pytest.approx(config.metrics["validation"]["perplexity"])
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.array([[2, 5, 6, 0], [2, 7, 0, 0]], dtype=np.int64)
    (logits,) = session.run(["logits"], {"input_ids": ids, "lengths": np.array([3, 2], dtype=np.int64)})
    assert logits.shape == (2, config.vocab_size) and np.isfinite(logits).all()


def test_out_of_scope_texts_from_another_file(tmp_path: Path) -> None:
    """--oos-data: a plain text file of out-of-scope messages joins a SNIPS-format intent set; a
    seeded share validates (choosing the threshold), and the rest is never trained on."""
    from tests import fixtures

    snips = fixtures.write_snips(tmp_path / "snips")
    oos_file = tmp_path / "oos.txt"
    oos_file.write_text("\n".join(fixtures.OUT_OF_SCOPE * 10) + "\n", encoding="utf-8")
    out = tmp_path / "models" / "intent" / "1"
    run_cli(
        "train", "--task", "intent", "--format", "snips", "--data", str(snips), "--oos-data", str(oos_file),
        "--oos-threshold", "--out", str(out), *TINY,
    )  # fmt: skip
    config = BundleConfig.load(out)
    assert "oos" not in config.labels and config.out_of_scope is not None
    assert "out-of-scope: 10% of" in config.data["validation_source"]
    assert {"in_scope_accuracy", "oos_recall"} <= set(config.metrics["validation"])

    bad = tmp_path / "empty.txt"
    bad.write_text("\n", encoding="utf-8")
    failed = run_cli(
        "train", "--task", "intent", "--format", "snips", "--data", str(snips), "--oos-data", str(bad),
        "--out", str(tmp_path / "x" / "1"), *TINY, check=False,
    )  # fmt: skip
    assert failed.returncode != 0 and "Traceback" not in failed.stderr


def test_distributed_training_with_torchrun_on_two_cpu_processes(tmp_path: Path, data_dir: Path) -> None:
    """`torchrun --nproc-per-node 2`: DistributedDataParallel over gloo; rank 0 alone exports and reports."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "models" / "sentiment" / "1"
    data = str(data_dir / "sst2" / "train.tsv")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "training", "train", "--task", "sentiment", "--format", "sst2", "--data", data,
               "--out", str(out), "--device", "cpu", "--run-dir", str(tmp_path / "run"), *TINY]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('"bundle"') == 1  # one report, from rank 0
    config = BundleConfig.load(out)
    assert config.training["processes"] == 2
    assert config.metrics["validation"]["accuracy"] > 0.8
    assert not list(out.parent.glob(".*staging*"))  # no half-written bundle from another rank
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["history"]) == config.training["epochs_run"]


def test_next_word_streams_with_carried_state_on_two_processes(tmp_path: Path, data_dir: Path) -> None:
    """The next-word default (one continuous stream, windows of `--bptt` steps, SGD divided by 4 on a
    plateau) under torchrun: each rank trains its own rows of the stream; rank 0 exports."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "models" / "words" / "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "training", "train", "--task", "next-word", "--format", "text",
               "--data", str(data_dir / "text" / "train.txt"), "--valid-data", str(data_dir / "text" / "valid.txt"),
               "--layers", "1", "--bptt", "10", "--out", str(out), "--device", "cpu", "--run-dir",
               str(tmp_path / "run"), *TINY_LM]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    config = BundleConfig.load(out)
    hyper = config.training["hyperparameters"]
    assert (hyper["optimizer"], hyper["bptt"], config.training["processes"]) == ("sgd", 10, 2)
    # Far better than a uniform guess over the fixture's small vocabulary, which it would be untrained.
    assert config.metrics["validation"]["perplexity"] < config.vocab_size / 4
    record = json.loads((tmp_path / "run" / "history.json").read_text())
    history = record["history"]
    # Sentences are validated, and served, from the mean state after `<eos>` in the stream: the
    # exported graphs, read from their zero state, score what PyTorch validated.
    assert config.training["start_state"].startswith("mean state after <eos> at ")
    validated = record["best_validation"]["perplexity"]
    assert config.metrics["validation"]["perplexity"] == pytest.approx(validated, rel=1e-4)
    rates = [entry["learning_rate"] for entry in history]
    assert rates[0] == 20 and all(later in (earlier, earlier / 4) for earlier, later in itertools.pairwise(rates))


def test_run_directory_holds_history_curves_and_confusion_matrix(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    out = tmp_path / "models" / "intent" / "1"
    run_cli("train", "--task", "intent", "--format", "snips", "--data", str(data_dir / "snips"),
            "--out", str(out), "--run-dir", str(run), *TINY)  # fmt: skip
    history = json.loads((run / "history.json").read_text())
    confusion = json.loads((run / "confusion.json").read_text())
    config = BundleConfig.load(out)
    matrix = np.array(confusion["true_by_predicted"])
    assert confusion["labels"] == config.labels and matrix.shape == (len(config.labels),) * 2
    assert matrix.sum() == config.data["validation_examples"]
    # The matrix is of the kept (best) weights: its diagonal is the best epoch's accuracy.
    assert np.trace(matrix) / matrix.sum() == pytest.approx(history["best_validation"]["accuracy"])
    for plot in ("curves.png", "confusion.png"):
        assert (run / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_ensemble_trains_its_members_apart_and_serves_as_one_graph(tmp_path: Path, data_dir: Path) -> None:
    import httpx

    from tests.conftest import Server

    run = tmp_path / "run"
    out = tmp_path / "models" / "support" / "1"
    run_cli("train", "--task", "intent", "--format", "csv", "--data", str(data_dir / "intent.csv"),
            "--text-field", "utterance", "--label-field", "intent", "--out", str(out), "--run-dir", str(run),
            *TINY, "--ensemble", "2", "--bag-members", "1")  # fmt: skip
    config = BundleConfig.load(out)
    assert config.architecture.members == 3 and len(config.training["members"]) == 3
    assert config.architecture.bag_members == 1 and config.architecture.bigram_buckets >= 1024
    assert config.training["hyperparameters"]["ensemble"] == 2
    # Each member has its own seed and its own training record; all validate on the same split.
    histories = [json.loads((run / f"member-{i}" / "history.json").read_text()) for i in (1, 2, 3)]
    assert [h["hyperparameters"]["seed"] for h in histories] == [13, 14, 15]
    assert histories[0]["history"] != histories[1]["history"]
    assert {h["best_validation"]["examples"] for h in histories} == {config.data["validation_examples"]}
    # The bag keeps its own schedule where the command set none (patience), not where it did (epochs).
    bag = histories[2]["hyperparameters"]
    assert bag["patience"] == BAG_RECIPE["patience"] != histories[0]["hyperparameters"]["patience"]
    assert bag["epochs"] == 8 and bag["learning_rate"] == 0.01
    graph = onnx.load(str(out / "model.onnx")).graph
    assert {"LSTM", "Mod"} <= {node.op_type for node in graph.node}  # recurrent members and hashed pairs
    # The intent default stores the four lookup tables (two members' words, the bag's words and
    # pairs) as int8 rows, checked against the float graph before calibration read it.
    tables = config.export["lookup_tables"]["files"]["model.onnx"]
    assert tables["tables"] == 4 and tables["top1_agreement"] >= 0.99 and tables["bytes"] < tables["fp32_bytes"]
    int8 = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(int8) == 4 and all(i.name.endswith(".int8") for i in int8)
    # The confusion matrix and the bundle's metrics are the ensemble's, measured on the exported graph.
    matrix = np.array(json.loads((run / "confusion.json").read_text())["true_by_predicted"])
    assert np.trace(matrix) / matrix.sum() == pytest.approx(config.metrics["validation"]["accuracy"])
    assert config.export["max_abs_diff"] < 1e-4

    server = Server(out.parent.parent)
    try:
        server.wait_ready()
        texts = ["play some jazz", "will it rain tomorrow", "book a table for two"]
        answer = httpx.post(f"{server.url}/predict", json={"model": "support", "inputs": texts}, timeout=30)
        assert answer.status_code == 200
        for output in answer.json()["outputs"]:
            assert output["label"] in config.labels and 0 < output["score"] <= 1
    finally:
        server.stop()

    # A language model has no ensemble: a clear error before any training.
    words = run_cli("train", "--task", "next-word", "--format", "text", "--data", str(data_dir / "text"),
                    "--out", str(tmp_path / "m" / "words" / "1"), "--ensemble", "2", check=False)  # fmt: skip
    assert words.returncode == 2 and "--ensemble" in words.stderr and "Traceback" not in words.stderr
    for flags in (["--bag-members", "1"], ["--ensemble", "0", "--bag-members", "0"], ["--bag-members", "-1"]):
        refused = run_cli("train", "--task", "next-word" if flags[1] == "1" else "intent", "--format", "text",
                          "--data", str(data_dir / "text"), "--out", str(tmp_path / "m" / "x" / "1"), *flags,
                          check=False)  # fmt: skip
        assert refused.returncode == 2 and "--bag-members" in refused.stderr and "Traceback" not in refused.stderr
