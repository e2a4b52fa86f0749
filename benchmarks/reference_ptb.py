"""A plain reference for the next-word model: the classic word-level LSTM language-model recipe
(pytorch/examples `word_language_model`: one continuous token stream, truncated backpropagation
through 35 steps, SGD at learning rate 20 divided by 4 when validation stalls, gradient clipping
0.25, tied embeddings) with the default next-word model's size (2 layers of 200, dropout 0.4) and
epochs (15), on the same data.

It reports validation perplexity two ways: over the continuous stream (the recipe's own protocol,
the one published PTB figures use) and per sentence from a fresh state (the protocol of
`python -m training evaluate` and of the service), so the project's model can be compared with it
on equal terms.

    python benchmarks/reference_ptb.py --train ../shared/datasets/ptb/train.txt --valid ../shared/datasets/ptb/valid.txt
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

EOS, UNK = "<eos>", "<unk>"


class Vocabulary:
    def __init__(self, lines: list[list[str]]) -> None:
        self.words = [EOS, UNK, *sorted({w for line in lines for w in line} - {EOS, UNK})]
        self.index = {w: i for i, w in enumerate(self.words)}

    def ids(self, words: list[str]) -> list[int]:
        return [self.index.get(w, self.index[UNK]) for w in words]


class LanguageModel(nn.Module):
    def __init__(self, vocabulary: int, size: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.embed = nn.Embedding(vocabulary, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout, batch_first=True)
        self.out = nn.Linear(size, vocabulary)
        self.out.weight = self.embed.weight  # tied
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.out.bias)

    def forward(self, ids: torch.Tensor, state=None):
        output, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.out(self.drop(output)), state


def read(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def stream_perplexity(model: LanguageModel, stream: torch.Tensor, bptt: int = 35) -> float:
    model.eval()
    data = stream.unsqueeze(0)  # one row: the whole text in order
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for start in range(0, data.size(1) - 1, bptt):
            ids = data[:, start : start + bptt]
            targets = data[:, start + 1 : start + 1 + bptt]
            ids = ids[:, : targets.size(1)]
            logits, state = model(ids, state)
            total += nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"
            ).item()
            count += targets.numel()
    return math.exp(total / count)


def sentence_perplexity(model: LanguageModel, sentences: list[list[int]], eos: int) -> float:
    """Each sentence from a fresh state after `<eos>`, predicting its words and the final `<eos>`."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in sentences:
            tokens = torch.tensor([[eos, *ids, eos]])
            logits, _ = model(tokens[:, :-1])
            total += nn.functional.cross_entropy(logits[0], tokens[0, 1:], reduction="sum").item()
            count += len(ids) + 1
    return math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.4)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--lr", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    train_lines, valid_lines = read(args.train), read(args.valid)
    vocabulary = Vocabulary(train_lines)
    eos = vocabulary.index[EOS]
    train = torch.tensor([i for line in train_lines for i in [*vocabulary.ids(line), eos]])
    valid_sentences = [vocabulary.ids(line) for line in valid_lines]
    valid = torch.tensor([i for ids in valid_sentences for i in [*ids, eos]])
    columns = train.numel() // args.batch_size
    batches = train[: columns * args.batch_size].view(args.batch_size, columns)  # one stream per row

    model = LanguageModel(len(vocabulary.words), args.size, args.layers, args.dropout)
    lr, best, best_state, started = args.lr, math.inf, None, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        state = None
        for start in range(0, columns - 1, args.bptt):
            ids = batches[:, start : start + args.bptt]
            targets = batches[:, start + 1 : start + 1 + args.bptt]
            ids = ids[:, : targets.size(1)]
            if state is not None:
                state = tuple(s.detach() for s in state)
            logits, state = model(ids, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            model.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(parameter.grad, alpha=-lr)
        perplexity = stream_perplexity(model, valid, args.bptt)
        print(f"epoch {epoch}: lr {lr:g}, validation stream perplexity {perplexity:.1f}", flush=True)
        if perplexity < best:
            best, best_state = perplexity, {k: v.clone() for k, v in model.state_dict().items()}
        else:
            lr /= 4.0
    model.load_state_dict(best_state)
    report = {
        "recipe": "continuous stream, BPTT 35, SGD lr 20 /4 on plateau, clip 0.25, tied, batch 20",
        "size": args.size,
        "layers": args.layers,
        "dropout": args.dropout,
        "epochs": args.epochs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary": len(vocabulary.words),
        "validation_stream_perplexity": round(best, 1),
        "validation_sentence_perplexity": round(sentence_perplexity(model, valid_sentences, eos), 1),
        "training_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
