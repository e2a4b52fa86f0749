"""Choosing the next words of completions: greedy, beam search, and sampling (temperature, top-p).

A `Decoder` holds the hypotheses of one completion request (one input text). Each step it gets the
log-probabilities of the next word for each live hypothesis and says which hypotheses live on
(`parents`, the rows whose recurrent state they continue) and with which words. Pure numpy: the
completion engine batches the model runs of many decoders together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.postprocess import top_indices


@dataclass
class Hypothesis:
    tokens: list[int] = field(default_factory=list)
    logprob: float = 0.0
    finished: bool = False  # ended with the end-of-sentence token

    def extended(self, token: int, logprob: float, eos: int) -> Hypothesis:
        finished = token == eos
        tokens = self.tokens if finished else [*self.tokens, token]
        return Hypothesis(tokens, self.logprob + logprob, finished)

    @property
    def rank(self) -> float:
        """Mean log-probability per step, so that short and long hypotheses compare fairly."""
        steps = len(self.tokens) + (1 if self.finished else 0)
        return self.logprob / max(1, steps)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def nucleus(probabilities: np.ndarray, top_p: float) -> np.ndarray:
    """Probabilities restricted to the smallest set of words whose mass reaches top_p, renormalised."""
    if top_p >= 1.0:
        return probabilities
    order = np.argsort(-probabilities, kind="stable")
    cumulative = np.cumsum(probabilities[order])
    keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
    restricted = np.zeros_like(probabilities)
    restricted[keep] = probabilities[keep]
    return restricted / restricted.sum()


class Decoder:
    """One input's completions under one strategy, `max_words` words at most."""

    def __init__(
        self,
        strategy: str,
        max_words: int,
        completions: int,
        eos: int,
        banned: list[int],
        beam_width: int = 4,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if strategy not in ("greedy", "beam", "sample"):
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self.max_words = max_words
        # Greedy has one path; a beam returns at most its width.
        self.completions = (
            1 if strategy == "greedy" else min(completions, beam_width) if strategy == "beam" else completions
        )
        self.width = beam_width if strategy == "beam" else completions if strategy == "sample" else 1
        self.eos = eos
        self.banned = banned
        self.temperature = temperature
        self.top_p = top_p
        self.rng = np.random.default_rng(seed)
        self.live = [Hypothesis()]
        self.finished: list[Hypothesis] = []
        self.steps = 0

    @property
    def done(self) -> bool:
        return not self.live or self.steps >= self.max_words

    def step(self, logits: np.ndarray) -> list[int]:
        """Advance on next-word logits [live, vocabulary]; returns the parent row of each new live hypothesis."""
        scaled = logits.astype(np.float64) / (self.temperature if self.strategy == "sample" else 1.0)
        scaled[:, self.banned] = -np.inf
        logprobs = log_softmax(scaled)
        chosen = self._beam(logprobs) if self.strategy == "beam" else self._per_row(logprobs)
        self.steps += 1
        parents: list[int] = []
        live: list[Hypothesis] = []
        for parent, token in chosen:
            hypothesis = self.live[parent].extended(token, float(logprobs[parent, token]), self.eos)
            if hypothesis.finished:
                self.finished.append(hypothesis)
            else:
                live.append(hypothesis)
                parents.append(parent)
        self.live = live
        return parents

    def _per_row(self, logprobs: np.ndarray) -> list[tuple[int, int]]:
        # The first step fans the single prefix out into `width` independent completions.
        rows = [0] * self.width if self.steps == 0 else list(range(len(self.live)))
        if self.strategy == "greedy":
            return [(row, int(logprobs[row].argmax())) for row in rows]
        chosen = []
        for row in rows:
            probabilities = nucleus(np.exp(logprobs[row]), self.top_p)
            chosen.append((row, int(self.rng.choice(probabilities.size, p=probabilities))))
        return chosen

    def _beam(self, logprobs: np.ndarray) -> list[tuple[int, int]]:
        """The `width` best continuations stay live; an end of sentence among the best `width` finishes one."""
        totals = (logprobs + np.array([h.logprob for h in self.live])[:, None]).ravel()
        vocabulary = logprobs.shape[1]
        chosen: list[tuple[int, int]] = []
        alive = 0
        for rank, index in enumerate(top_indices(totals, 2 * self.width)):
            if not np.isfinite(totals[index]):
                break
            parent, token = divmod(int(index), vocabulary)
            if token == self.eos:
                if rank < self.width:
                    chosen.append((parent, token))
                continue
            chosen.append((parent, token))
            alive += 1
            if alive == self.width:
                break
        return chosen

    def results(self) -> list[Hypothesis]:
        """The best `completions` hypotheses, finished or not, best first."""
        ranked = sorted(self.finished + self.live, key=lambda h: h.rank, reverse=True)
        if self.strategy != "beam":
            # Each sample or the greedy path is its own answer, in the order drawn.
            ranked = self.finished + self.live
        return ranked[: self.completions]
