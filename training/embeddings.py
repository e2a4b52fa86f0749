"""Pretrained word vectors (`--embeddings PATH`): GloVe, word2vec and fastText text files.

The three formats are one format with or without a header: GloVe writes `word v1 ... vd` from the
first line; word2vec (text mode) and fastText's `.vec` start with a `count dimension` line. A `.gz`
file is read compressed. Only the words of the model's vocabulary are kept, so a file of millions
of vectors costs one pass and the vocabulary's rows of memory. The vocabulary is lower-cased (the
tokenizer lower-cases), so a word's lower-case vector wins, and otherwise its first cased variant.
Rows the file does not cover keep their random initialisation, scaled like the vectors read.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnserve_bundle.config import PAD_ID, SPECIAL_TOKENS
from training.data import DataError

log = logging.getLogger(__name__)


@dataclass
class EmbeddingsReport:
    path: str
    format: str  # "glove" (no header) or "word2vec/fasttext" (header line)
    dimension: int
    vectors_read: int
    malformed_lines: int
    vocabulary: int  # words of the model's vocabulary (special tokens excluded)
    covered: int
    coverage: float
    trainable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
        yield from text


def _header(first: str) -> tuple[int, int] | None:
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def vector_dimension(path: Path) -> int:
    """The vectors' dimension, from the header or the first vector line."""
    for line in _lines(path):
        if not line.strip():
            continue
        header = _header(line)
        return header[1] if header else len(line.rstrip().split(" ")) - 1
    raise DataError(f"{path}: no vectors")


def read_vectors(path: Path, vocabulary: dict[str, int]) -> tuple[dict[int, np.ndarray], int, str, int, int]:
    """Vectors of the vocabulary's words by token id; dimension, format, lines read, malformed."""
    if not path.is_file():
        raise DataError(f"{path}: no such vectors file")
    dimension = vector_dimension(path)
    found: dict[int, np.ndarray] = {}
    exact: set[int] = set()
    fmt, read, malformed = "glove", 0, 0
    for number, line in enumerate(_lines(path)):
        if number == 0 and _header(line):
            fmt = "word2vec/fasttext"
            continue
        parts = line.rstrip("\n\r ").split(" ")
        if len(parts) != dimension + 1:
            malformed += bool(line.strip())
            continue
        read += 1
        word = parts[0]
        token_id = vocabulary.get(word.lower())
        if token_id is None or token_id in exact or (token_id in found and word != word.lower()):
            continue
        try:
            vector = np.asarray(parts[1:], dtype=np.float32)
        except ValueError:
            malformed += 1
            continue
        if not np.all(np.isfinite(vector)):
            malformed += 1
            continue
        found[token_id] = vector
        if word == word.lower():
            exact.add(token_id)
    if read == 0:
        raise DataError(f"{path}: no vector of dimension {dimension} could be read")
    return found, dimension, fmt, read, malformed


def load_pretrained(
    embedding: nn.Embedding, vocabulary: dict[str, int], path: Path, trainable: bool
) -> EmbeddingsReport:
    """Copy the file's vectors into the embedding's rows; freeze it unless `trainable`."""
    found, dimension, fmt, read, malformed = read_vectors(path, vocabulary)
    if dimension != embedding.embedding_dim:
        raise DataError(
            f"{path}: vectors of dimension {dimension}, the model's embeddings are {embedding.embedding_dim}"
        )
    words = [token_id for word, token_id in vocabulary.items() if word not in SPECIAL_TOKENS]
    with torch.no_grad():
        if found:
            vectors = np.stack(list(found.values()))
            # Uncovered rows: random, at the scale of the vectors read (not the layer's N(0, 1)).
            scale = float(vectors.std()) or 1.0
            embedding.weight.normal_(0.0, scale)
            rows = torch.tensor(list(found), dtype=torch.long)
            embedding.weight[rows] = torch.from_numpy(vectors)
        embedding.weight[PAD_ID].zero_()
    embedding.weight.requires_grad_(trainable)
    covered = sum(1 for token_id in words if token_id in found)
    report = EmbeddingsReport(
        path=str(path),
        format=fmt,
        dimension=dimension,
        vectors_read=read,
        malformed_lines=malformed,
        vocabulary=len(words),
        covered=covered,
        coverage=round(covered / max(1, len(words)), 4),
        trainable=trainable,
    )
    log.info("embeddings: %d of %d vocabulary words covered by %s (%s)", covered, len(words), path, fmt)
    return report
