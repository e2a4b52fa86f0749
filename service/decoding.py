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


def nucleus(probabilities: np.ndarray, top_p: float) -> np.ndarray:
    """Probabilities (along the last axis, one row or many) restricted to the smallest set of words
    whose mass reaches top_p, renormalised; words tied with the last one kept are kept too."""
    if top_p >= 1.0:
        return probabilities
    ordered = -np.sort(-probabilities, axis=-1)  # sorting values is several times cheaper than argsort
    cumulative = np.cumsum(ordered, axis=-1)
    last = np.minimum((cumulative < top_p).sum(axis=-1, keepdims=True), probabilities.shape[-1] - 1)
    threshold = np.take_along_axis(ordered, last, axis=-1)
    restricted = np.where(probabilities >= threshold, probabilities, 0.0)
    return restricted / restricted.sum(axis=-1, keepdims=True)


def draw(probabilities: np.ndarray, rng: np.random.Generator) -> list[int]:
    """One word per row, drawn by inverse CDF (rows need not be normalised; zero never drawn)."""
    cumulative = np.cumsum(probabilities, axis=-1)
    targets = rng.random(len(cumulative)) * cumulative[:, -1]
    return [int(np.searchsorted(row, target, side="right")) for row, target in zip(cumulative, targets, strict=True)]


# The smallest temperature divided by as given; smaller ones sample as this one does (greedy, but
# for exact ties). float32 holds it, and a logit gap of 1e-8 over it is still finite.
MIN_TEMPERATURE = 1e-30


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
        # float32, as the model computes: a quarter of float64's time for the exponential, half for
        # the nucleus sort; log-probabilities are summed in Python floats.
        scaled = logits.astype(np.float32)
        scaled[:, self.banned] = -np.inf
        # One exponential per step: the weights give sampling probabilities, and a log-probability
        # is the shifted logit minus its row's log-normaliser.
        shifted = scaled - scaled.max(axis=-1, keepdims=True)
        if self.strategy == "sample":
            # Shifted first, divided second: every value is <= 0, so a tiny temperature sends the
            # others to -inf and keeps the best at 0 (sampling tends to greedy), where dividing the
            # raw logits overflowed to inf - inf = NaN. Below the floor float32 would round to 0.
            shifted /= np.float32(max(self.temperature, MIN_TEMPERATURE))
        weights = np.exp(shifted)
        log_totals = np.log(weights.sum(axis=-1))
        if self.strategy == "beam":
            chosen = self._beam(shifted - log_totals[:, None])
        else:
            chosen = self._per_row(shifted, weights)
        self.steps += 1
        parents: list[int] = []
        live: list[Hypothesis] = []
        for parent, token in chosen:
            logprob = float(shifted[parent, token] - log_totals[parent])
            hypothesis = self.live[parent].extended(token, logprob, self.eos)
            if hypothesis.finished:
                self.finished.append(hypothesis)
            else:
                live.append(hypothesis)
                parents.append(parent)
        self.live = live
        return parents

    def _per_row(self, shifted: np.ndarray, weights: np.ndarray) -> list[tuple[int, int]]:
        # The first step fans the single prefix out into `width` independent completions.
        rows = [0] * self.width if self.steps == 0 else list(range(len(self.live)))
        if self.strategy == "greedy":
            return [(row, int(shifted[row].argmax())) for row in rows]
        # All rows at once: one sort, one cumulative sum and one random draw per row.
        probabilities = weights[rows] / weights[rows].sum(axis=-1, keepdims=True)
        tokens = draw(nucleus(probabilities, self.top_p), self.rng)
        return list(zip(rows, tokens, strict=True))

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
