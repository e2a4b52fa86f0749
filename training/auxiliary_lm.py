"""An auxiliary language-modelling loss for recurrent classifiers (training only).

While a recurrent member learns its classes, its forward states also predict the next word and
its backward states the previous one (Rei 2017, "Semi-supervised multitask learning for sequence
labeling"; the bidirectional LM of ELMo, here on the training text itself). Intents are told
apart by a few words, and a classifier alone learns a vector only for what separates the
training examples; predicting the neighbouring words makes every word's vector and the states
carry what the text says around it, which fine-grained intents share. The output layer is the
member's own word table (tied, through a projection where the sizes differ), so the loss adds
no table; the head is dropped before export, so the served graph does not change. Measured in
training/REPORT.md: one intent BiLSTM gains, the default intent ensemble and sentiment do not, so
it is an option, off by default.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from rnnserve_bundle.config import SPECIAL_TOKENS

IGNORED = -100  # cross_entropy's ignore_index

# The words the loss predicts: the most frequent of the training text; the rest are not predicted.
# The softmax's cost grows with this number: at 2,048 the loss doubles a BiLSTM member's step on
# CPU, and 512 or 1,024 words cost nothing but validated no higher than no loss (REPORT.md).
PREDICTED_WORDS = 2048


def predicted_words(sequences: list[list[int]], vocab_size: int, limit: int = PREDICTED_WORDS) -> np.ndarray:
    """Ids of the `limit` most frequent words of `sequences` (no special tokens), most frequent first."""
    counts = np.bincount(np.fromiter((t for s in sequences for t in s), dtype=np.int64), minlength=vocab_size)
    counts[: len(SPECIAL_TOKENS)] = 0
    order = np.argsort(-counts, kind="stable")[:limit]
    return order[counts[order] > 0]


class LanguageModelHead(nn.Module):
    """Next-word loss of the forward states and previous-word loss of the backward ones."""

    def __init__(
        self,
        hidden_size: int,
        embedding_dim: int,
        bidirectional: bool,
        words: np.ndarray,
        vocab_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.dropout = nn.Dropout(dropout)
        # Tied to the word table: the states are read against the words' own vectors.
        self.projection = (
            nn.Identity() if hidden_size == embedding_dim else nn.Linear(hidden_size, embedding_dim, bias=False)
        )
        rows = torch.as_tensor(words, dtype=torch.long)
        index = torch.full((vocab_size,), IGNORED, dtype=torch.long)  # each word's class, IGNORED: not predicted
        index[rows] = torch.arange(len(rows))
        # Not persistent: they describe the training text, not the weights kept or exported.
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("index", index, persistent=False)

    def _loss(self, states: Tensor, targets: Tensor, valid: Tensor, table: Tensor) -> Tensor:
        keep = valid & (targets != IGNORED)
        if not keep.any():
            return states.sum() * 0.0
        logits = self.projection(self.dropout(states[keep])) @ table[self.rows].t()
        return nn.functional.cross_entropy(logits, targets[keep])

    def forward(self, outputs: Tensor, lengths: Tensor, input_ids: Tensor, table: Tensor) -> Tensor:
        """Mean of the directions' losses. `outputs` [batch, seq, (2 x) hidden] is the last layer's,
        `input_ids` the words as written (before word dropout), `table` the member's word table."""
        targets = self.index[input_ids]  # padding and special tokens are never predicted
        steps = torch.arange(outputs.size(1), device=outputs.device).unsqueeze(0)
        real = steps < lengths.unsqueeze(1)
        # The state after word t predicts word t + 1 (both real).
        loss = self._loss(outputs[:, :-1, : self.hidden_size], targets[:, 1:], real[:, 1:], table)
        if not self.bidirectional:
            return loss
        # The backward state at word t has read t..end and predicts word t - 1.
        backward = self._loss(outputs[:, 1:, self.hidden_size :], targets[:, :-1], real[:, 1:], table)
        return (loss + backward) / 2
