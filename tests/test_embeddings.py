"""`--embeddings PATH`: GloVe, word2vec and fastText text files initialise the vocabulary they
cover, the coverage is recorded in config.json, and the vectors train or stay frozen by flag."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from rnnserve_bundle.config import BundleConfig
from tests import fixtures
from tests.conftest import TINY, run_cli

DIM = 24  # TINY's embedding size


def vectors(words: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {word: rng.normal(0, 0.5, DIM).astype(np.float32) for word in words}


def write_vectors(path: Path, table: dict[str, np.ndarray], header: bool) -> Path:
    lines = [f"{len(table)} {DIM}"] if header else []
    lines += [word + " " + " ".join(f"{x:.6f}" for x in vector) for word, vector in table.items()]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def embedding_matrix(bundle: Path, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The word vectors the graph serves, and per row how far int8 storage may have moved them from
    the trained ones (half a step of the row's scale; 0 for a float32 table)."""
    graph = onnx.load(str(bundle / "model.onnx")).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    names = [name for name, array in tensors.items() if array.shape == (vocab_size, DIM)]
    assert len(names) == 1, "expected one [vocabulary, dimension] initializer: the embeddings"
    table = tensors[names[0]]
    if table.dtype == np.int8:  # the default for classifiers: int8 rows and their scales
        scales = tensors[names[0].removesuffix(".int8") + ".scale"]
        return table * scales, scales / 2
    return table, np.zeros((vocab_size, 1), dtype=np.float32)


def train(tmp_path: Path, data_dir: Path, *extra: str, check: bool = True):
    out = tmp_path / "models" / "sentiment" / "1"
    result = run_cli(
        "train", "--task", "sentiment", "--format", "sst2", "--data", str(data_dir / "sst2"),
        "--out", str(out), *TINY, "--epochs", "2", *extra, check=check,
    )  # fmt: skip
    return out, result


def test_glove_vectors_frozen_are_served_as_given(tmp_path: Path, data_dir: Path) -> None:
    words = [*fixtures.POSITIVE[:4], *fixtures.NEGATIVE[:4], "zzz-not-in-the-data"]
    table = vectors(words)
    # Cased variants: the lower-case vector wins whatever the order.
    table_with_case = {"Great": np.ones(DIM, dtype=np.float32), **table}
    glove = write_vectors(tmp_path / "glove.txt", table_with_case, header=False)
    out, _ = train(tmp_path, data_dir, "--embeddings", str(glove), "--freeze-embeddings")
    config = BundleConfig.load(out)
    report = config.embeddings
    assert report is not None and report["format"] == "glove" and report["trainable"] is False
    assert report["covered"] == 8 and report["vectors_read"] == len(table_with_case)
    assert report["coverage"] == round(8 / report["vocabulary"], 4)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    matrix, storage = embedding_matrix(out, config.vocab_size)
    for word in words[:8]:
        row = tokenizer.token_to_id(word)
        np.testing.assert_allclose(matrix[row], table[word], atol=1e-6 + float(storage[row, 0]))
    assert not matrix[0].any()  # padding stays zero


def test_word2vec_header_gz_vectors_fine_tune(tmp_path: Path, data_dir: Path) -> None:
    table = vectors(fixtures.POSITIVE + fixtures.NEGATIVE, seed=1)
    path = write_vectors(tmp_path / "vectors.vec.gz", table, header=True)
    out, _ = train(tmp_path, data_dir, "--embeddings", str(path))
    config = BundleConfig.load(out)
    assert config.embeddings is not None and config.embeddings["format"] == "word2vec/fasttext"
    assert config.embeddings["trainable"] is True and config.embeddings["covered"] == 16
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    matrix, storage = embedding_matrix(out, config.vocab_size)
    rows = [tokenizer.token_to_id(w) for w in fixtures.POSITIVE]
    moved = [np.abs(matrix[r] - table[w]).max() - storage[r, 0] for r, w in zip(rows, fixtures.POSITIVE, strict=True)]
    assert max(moved) > 1e-4  # trained from the vectors, not kept: more than int8 storage moves them


def test_vectors_of_another_dimension_are_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_text("great 0.1 0.2 0.3\nawful 0.3 0.2 0.1\n", encoding="utf-8")
    _, result = train(tmp_path, data_dir, "--embeddings", str(path), "--embedding-dim", "24", check=False)
    assert result.returncode == 2 and "dimension 3" in result.stderr
    _, missing = train(tmp_path, data_dir, "--embeddings", str(tmp_path / "absent.txt"), check=False)
    assert missing.returncode == 2 and "no such vectors file" in missing.stderr
