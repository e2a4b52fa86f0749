"""Word vectors that share character n-grams (`--subwords`; fastText's subword model, Bojanowski et
al. 2017).

A word seen once or twice in a user's intent file gets its own vector from those few examples only;
its n-grams (`<tr`, `tran`, `ansf`, ... of `transferred`) are shared with `transfer`, `transfers`
and `transferring`, whose examples train them too. In training a word's vector is its own vector
plus the mean of its hashed 3- to 5-character n-grams' vectors. Only words of the vocabulary are
looked up: before export the sum is folded into one plain table (`fold_subwords`), so the ONNX graph,
its inputs and the service's tokenizer are what they are without this option, and a word unseen in
training is still `<unk>` (the n-grams improve the vectors of rare known words, not unknown ones).
"""

from __future__ import annotations

import zlib

import torch
from torch import Tensor, nn

from rnnserve_bundle.config import SPECIAL_TOKENS
from training.model import hashed_table_size

# fastText's default n-gram sizes.
NGRAM_SIZES = (3, 4, 5)
# Longer tokens (URLs, order numbers, pasted hashes) get no n-grams: few are words whose pieces
# recur, and the table of n-gram ids is as wide as the vocabulary's longest row (at most 69 wide).
MAX_WORD_CHARS = 24


def char_ngrams(word: str) -> list[str]:
    """The word's 3- to 5-character n-grams, with `<` and `>` marking its start and end."""
    marked = f"<{word}>"
    grams = {marked[i : i + n] for n in NGRAM_SIZES for i in range(len(marked) - n + 1)}
    grams.discard(marked)  # the whole word is the word's own vector already
    return sorted(grams)


def word_ngrams(token: str) -> list[str]:
    """The n-grams a vocabulary token trains with: none for the special tokens and long tokens."""
    if token in SPECIAL_TOKENS or len(token) > MAX_WORD_CHARS:
        return []
    return char_ngrams(token)


def ngram_table_size(vocab: dict[str, int]) -> int:
    """N-gram vectors for a vocabulary: one per distinct n-gram, sized as the bag's word-pair table
    is (`hashed_table_size`). The table trains only: export folds it away."""
    return hashed_table_size(len({g for token in vocab for g in word_ngrams(token)}))


def ngram_ids(vocab: dict[str, int], buckets: int) -> Tensor:
    """Row i: the hashed n-gram rows (1..buckets) of word id i, padded with 0 (`word_ngrams`).
    crc32, not Python's salted hash, so that a seed trains the same table every run."""
    rows: list[list[int]] = [[] for _ in range(max(vocab.values()) + 1)]
    for token, index in vocab.items():
        rows[index] = [1 + zlib.crc32(g.encode("utf-8")) % buckets for g in word_ngrams(token)]
    width = max(1, *(len(row) for row in rows))
    return torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)


class SubwordEmbedding(nn.Module):
    """A word table whose rows are each word's own vector plus the mean of its n-grams' vectors."""

    def __init__(self, words: nn.Embedding, ngrams: Tensor, buckets: int) -> None:
        super().__init__()
        if ngrams.size(0) != words.num_embeddings:
            raise ValueError(f"n-grams for {ngrams.size(0)} words, table of {words.num_embeddings}")
        self.words = words
        self.register_buffer("ngrams", ngrams, persistent=False)
        dim = words.embedding_dim
        # Row 0 is padding: EmbeddingBag leaves it out of the mean, and a word with no n-grams
        # (a special token) gets zeros, so its vector is its own.
        self.grams = nn.EmbeddingBag(buckets + 1, dim, mode="mean", padding_idx=0)
        nn.init.uniform_(self.grams.weight, -1 / dim, 1 / dim)
        with torch.no_grad():
            self.grams.weight[0].zero_()

    def forward(self, input_ids: Tensor) -> Tensor:
        # Only the batch's words' n-grams: a few hundred rows, not the whole vocabulary's.
        grams = self.grams(self.ngrams[input_ids.reshape(-1)])
        return self.words(input_ids) + grams.view(*input_ids.shape, -1)

    @torch.no_grad()
    def folded(self) -> nn.Embedding:
        """The same vectors as one plain table, for export."""
        words = self.words
        weight = words.weight
        table = nn.Embedding(
            words.num_embeddings, words.embedding_dim, words.padding_idx, device=weight.device, dtype=weight.dtype
        )
        table.weight.copy_(weight + self.grams(self.ngrams.to(weight.device)))
        return table


def fold_subwords(model: nn.Module) -> None:
    """Replace every SubwordEmbedding inside the model by its folded plain table."""
    for name, child in list(model.named_children()):
        if isinstance(child, SubwordEmbedding):
            setattr(model, name, child.folded())
        else:
            fold_subwords(child)
