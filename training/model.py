"""LSTM/GRU models whose outputs are exactly independent of right padding.

Sequences are right-padded. A forward recurrent pass never looks ahead, so its output at the
last real step is unaffected by the padding after it. The backward direction of a bidirectional
layer runs as a forward pass over each sequence reversed *within its own length*, which keeps the
padding at the end. Both directions therefore ignore padded steps exactly, with plain `LSTM`/`GRU`
ops that ONNX and ONNX Runtime run natively (no packed sequences needed).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnserve_bundle.config import PAD_ID, Architecture
from training.auxiliary_lm import LanguageModelHead

_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


def init_forget_gate_bias(rnn: nn.RNNBase) -> None:
    """Forget-gate bias 1 (Jozefowicz et al. 2015): PyTorch orders gates (input, forget, cell, out)."""
    if not isinstance(rnn, nn.LSTM):
        return
    for name, bias in rnn.named_parameters():
        if name.startswith("bias_"):
            size = bias.numel() // 4
            with torch.no_grad():
                bias[size : 2 * size] = 1.0 if name.startswith("bias_ih") else 0.0


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first `lengths[b]` steps of each sequence, leaving padding in place."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.size(2)))


def last_step(x: Tensor, lengths: Tensor) -> Tensor:
    """Output at the last real step of each sequence: [batch, features]."""
    index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, x.size(2))
    return x.gather(1, index).squeeze(1)


class MaskedRNN(nn.Module):
    """Stacked, optionally bidirectional RNN; dropout between layers, never on the recurrence."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        rnn = _CELLS[cell]
        self.bidirectional = bidirectional
        self.dropout = nn.Dropout(dropout)
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        size = input_size
        for _ in range(layers):
            self.forward_layers.append(rnn(size, hidden, batch_first=True))
            if bidirectional:
                self.backward_layers.append(rnn(size, hidden, batch_first=True))
            size = hidden * (2 if bidirectional else 1)
        self.output_size = size
        for layer in [*self.forward_layers, *self.backward_layers]:
            init_forget_gate_bias(layer)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Return (outputs [batch, seq, output_size], summary [batch, output_size])."""
        for depth, forward_layer in enumerate(self.forward_layers):
            if depth:
                x = self.dropout(x)
            out, _ = forward_layer(x)
            if self.bidirectional:
                back, _ = self.backward_layers[depth](reverse_within_length(x, lengths))
                out = torch.cat([out, reverse_within_length(back, lengths)], dim=2)
            x = out
        hidden = self.forward_layers[0].hidden_size
        summary = last_step(x[:, :, :hidden], lengths)
        if self.bidirectional:
            summary = torch.cat([summary, x[:, 0, hidden:]], dim=1)
        return x, summary


class RNNClassifier(nn.Module):
    """Embedding → masked (Bi)RNN → [final states; masked max-pool] → linear logits."""

    def __init__(self, arch: Architecture, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, arch.embedding_dim, padding_idx=PAD_ID)
        self.input_dropout = nn.Dropout(arch.dropout)
        self.rnn = MaskedRNN(
            arch.cell,
            arch.embedding_dim,
            arch.hidden_size,
            arch.num_layers,
            arch.bidirectional,
            arch.dropout,
        )
        self.output_dropout = nn.Dropout(arch.dropout)
        self.head = nn.Linear(2 * self.rnn.output_size, num_classes)
        # Training only (`training/auxiliary_lm.py`): set before training, dropped before export.
        self.language_model: LanguageModelHead | None = None

    def forward(
        self, input_ids: Tensor, lengths: Tensor, words: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits; with `words` (the ids before word dropout) also the auxiliary language-model loss."""
        outputs, summary = self.rnn(self.input_dropout(self.embedding(input_ids)), lengths)
        steps = torch.arange(outputs.size(1), device=outputs.device).unsqueeze(0)
        padded = (steps >= lengths.unsqueeze(1)).unsqueeze(2)
        pooled = outputs.masked_fill(padded, -1e4).amax(dim=1)
        logits = self.head(self.output_dropout(torch.cat([summary, pooled], dim=1)))
        if words is None:
            return logits
        if self.language_model is None:
            raise ValueError("the auxiliary language-model loss needs a head (set language_model before training)")
        return logits, self.language_model(outputs, lengths, words, self.embedding.weight)


# Multiplier of the bigram hash: a prime above any vocabulary size, so that distinct (previous, word)
# id pairs are distinct numbers before the modulo.
_BIGRAM_PRIME = 1_000_003


def bigram_buckets(input_ids: Tensor, buckets: int) -> Tensor:
    """The hashed (previous word, word) pair at each position; the first word's previous is `<pad>`."""
    previous = torch.cat([torch.full_like(input_ids[:, :1], PAD_ID), input_ids[:, :-1]], dim=1)
    return (previous * _BIGRAM_PRIME + input_ids) % buckets


def hashed_table_size(distinct: int) -> int:
    """Rows for a hashed table of `distinct` keys: the power of two at or above it, within [2^10,
    2^16]; beyond the cap keys share rows."""
    return min(1 << 16, max(1 << 10, 1 << (distinct - 1).bit_length()))


def bigram_table_size(sequences: list[list[int]]) -> int:
    """Bigram vectors for a training set, one per distinct word pair (`hashed_table_size`). Twice
    as many validated the same and trained 4 times slower (REPORT.md): AdamW updates every row at
    every step. The cap bounds the table (at 128 dimensions, 33.5 MB of `model.onnx`)."""
    pairs = {(previous, word) for ids in sequences for previous, word in zip([PAD_ID, *ids], ids, strict=False)}
    return hashed_table_size(len(pairs))


class BagClassifier(nn.Module):
    """fastText's classifier (Joulin et al. 2017): the mean of the text's word vectors and hashed
    word-bigram vectors, then a linear layer. No recurrence: it is an ensemble member whose errors
    differ from the recurrent members' (it reads word pairs, not order), measured in REPORT.md."""

    def __init__(self, vocab_size: int, embedding_dim: int, buckets: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.buckets = buckets
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.pairs = nn.Embedding(buckets, embedding_dim)
        for table in (self.embedding, self.pairs):  # fastText's initialisation
            nn.init.uniform_(table.weight, -1 / embedding_dim, 1 / embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embedding_dim, num_classes)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        steps = torch.arange(input_ids.size(1), device=input_ids.device).unsqueeze(0)
        real = (steps < lengths.unsqueeze(1)).unsqueeze(2)
        features = self.embedding(input_ids) + self.pairs(bigram_buckets(input_ids, self.buckets))
        total = features.masked_fill(~real, 0.0).sum(dim=1)
        mean = total / (2 * lengths.clamp(min=1).unsqueeze(1).to(total.dtype))
        return self.head(self.dropout(mean))


class EnsembleClassifier(nn.Module):
    """Several classifiers trained apart, served as one graph: the log of their mean probability.

    Its softmax is the members' mean probability, so everything downstream (temperature, the
    out-of-scope rule, top-k) reads it as it reads one classifier's logits.
    """

    def __init__(self, members: list[RNNClassifier | BagClassifier]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        log_probs = torch.stack([torch.log_softmax(m(input_ids, lengths), dim=1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


class RNNLanguageModel(nn.Module):
    """Word-level LM (Zaremba et al. 2014 style) with tied input/output embeddings when sizes match."""

    def __init__(self, arch: Architecture, vocab_size: int) -> None:
        super().__init__()
        self.cell = arch.cell
        self.embedding = nn.Embedding(vocab_size, arch.embedding_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(arch.dropout)
        self.rnn = _CELLS[arch.cell](
            arch.embedding_dim,
            arch.hidden_size,
            num_layers=arch.num_layers,
            dropout=arch.dropout if arch.num_layers > 1 else 0.0,
            batch_first=True,
        )
        init_forget_gate_bias(self.rnn)
        self.decoder = nn.Linear(arch.hidden_size, vocab_size)
        # The recipe's initialisation: small embeddings, so that the first logits are small.
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        nn.init.zeros_(self.decoder.bias)
        if arch.tied_embeddings:
            if arch.hidden_size != arch.embedding_dim:
                raise ValueError("tied embeddings need hidden_size == embedding_dim")
            self.decoder.weight = self.embedding.weight
        # The state a sentence starts from when it is read alone: zeros, unless the model was
        # trained on a stream (`learn_start_state`), where every sentence began after another's
        # `<eos>` and a zero state is one it never saw there. [states (h, or h and c), layers, hidden]
        states = 2 if arch.cell == "lstm" else 1
        self.register_buffer("start_state", torch.zeros(states, arch.num_layers, arch.hidden_size))

    def forward(self, input_ids: Tensor, state: tuple[Tensor, ...] | Tensor | None = None):
        """Logits for every position [batch, seq, vocab] and the final recurrent state."""
        outputs, state = self.rnn(self.dropout(self.embedding(input_ids)), state)
        return self.decoder(self.dropout(outputs)), state

    def rnn_state(self, parts: list[Tensor]) -> tuple[Tensor, Tensor] | Tensor:
        """The form the RNN takes a state in: (h, c) for an LSTM, h for a GRU."""
        return (parts[0], parts[1]) if self.cell == "lstm" else parts[0]

    @staticmethod
    def state_parts(state: tuple[Tensor, ...] | Tensor) -> tuple[Tensor, ...]:
        """The RNN's state as a tuple of its parts, whatever the cell."""
        return state if isinstance(state, tuple) else (state,)

    def initial_state(self, batch: int) -> tuple[Tensor, Tensor] | Tensor:
        """The sentence-start state for `batch` rows, in the form the RNN takes."""
        rows = self.start_state.unsqueeze(2).expand(-1, -1, batch, -1).contiguous()
        return self.rnn_state(list(rows))

    @torch.no_grad()
    def learn_start_state(self, sentences: list[list[int]], eos_id: int, rows: int = 64, steps: int = 1000) -> int:
        """Set the start state to the mean state right after `<eos>` when `sentences` are read as
        the training stream reads them (each then `<eos>`, the state carried); return how many
        sentence ends it averaged. The first steps of each row, read from zeros, are skipped."""
        tokens = [token for ids in sentences for token in (*ids, eos_id)]
        rows = max(1, min(rows, len(tokens) // 100))
        columns = min(len(tokens) // rows, steps)
        warm_up = min(50, columns // 2)
        device = self.start_state.device
        stream = torch.tensor(tokens[: rows * columns], dtype=torch.long, device=device).view(rows, columns)
        was_training = self.training
        self.eval()
        total = torch.zeros_like(self.start_state, dtype=torch.float64)
        count, state = 0, None
        for column in range(columns):
            step = stream[:, column : column + 1]
            _, state = self.rnn(self.embedding(step), state)
            ends = step[:, 0] == eos_id
            if column >= warm_up and bool(ends.any()):
                total += torch.stack([part[:, ends, :].sum(dim=1) for part in self.state_parts(state)]).double()
                count += int(ends.sum())
        self.train(was_training)
        if count:
            self.start_state.copy_((total / count).to(self.start_state.dtype))
        return count


class NextWordGraph(nn.Module):
    """Serving graph for `model.onnx`: logits of the word after each prefix's last real token."""

    def __init__(self, lm: RNNLanguageModel) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        outputs, _ = self.lm.rnn(self.lm.embedding(input_ids), self.lm.initial_state(input_ids.size(0)))
        return self.lm.decoder(last_step(outputs, lengths))


class StepGraph(nn.Module):
    """Serving graph for `step.onnx`: read a chunk from a given state, return logits and state.

    Its states are offsets from the model's start state, so that a zero state, which is how the
    service and clients begin a text, means a sentence start.
    """

    def __init__(self, lm: RNNLanguageModel) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: Tensor, *state: Tensor):
        start = self.lm.start_state.unsqueeze(2)  # [states, layers, 1, hidden]: added to every row
        given = [part + start[i] for i, part in enumerate(state)]
        logits, new_state = self.lm(input_ids, self.lm.rnn_state(given))
        return logits, *(part - start[i] for i, part in enumerate(self.lm.state_parts(new_state)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
