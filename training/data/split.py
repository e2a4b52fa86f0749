"""Validation split carved from training data with a fixed seed, stratified by label."""

from __future__ import annotations

import random
from collections import defaultdict

from training.data.readers import Example


def carve_validation(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Return (train, validation); each label keeps its share in both parts."""
    groups: dict[str | None, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.label].append(example)
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted(groups, key=str):
        members = groups[label][:]
        rng.shuffle(members)
        cut = max(1, round(len(members) * fraction)) if len(members) > 1 else 0
        validation.extend(members[:cut])
        train.extend(members[cut:])
    rng.shuffle(train)
    return train, validation


MIN_GROUPED_WORDS = 3  # shorter phrases ("a good", "bad") recur across sentences: not a leak of one


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def carve_sentence_validation(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out whole sentences and every phrase cut from them (SST-style data, whose training lines
    are phrases of the same sentences): no validation sentence has a phrase of 3+ words in training.

    Sentences are the lines no longer line contains; each other line of 3+ words is kept out of
    training when a held-out sentence contains it (found through a trigram index). Validation holds
    only whole sentences, as the sentence-level benchmarks do; a stratified `fraction` of them.
    """
    padded = [f" {' '.join(e.text.lower().split())} " for e in examples]
    words = [p.split() for p in padded]
    order = sorted(range(len(examples)), key=lambda i: -len(words[i]))
    sentences: list[int] = []
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i in order:
        if len(words[i]) < MIN_GROUPED_WORDS:
            continue
        first = tuple(words[i][:3])
        if any(padded[i] in padded[s] for s in index.get(first, ())):
            continue  # a phrase of a longer line
        sentences.append(i)
        for trigram in _trigrams(words[i]):
            index[trigram].append(i)
    held_sentences = carve_validation([Example(str(i), examples[i].label) for i in sentences], fraction, seed)[1]
    held = {int(e.text) for e in held_sentences}
    held_index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i in held:
        for trigram in _trigrams(words[i]):
            held_index[trigram].append(i)
    train = []
    for i, example in enumerate(examples):
        if i in held:
            continue
        if len(words[i]) >= MIN_GROUPED_WORDS and any(
            padded[i] in padded[s] for s in held_index.get(tuple(words[i][:3]), ())
        ):
            continue  # part of a held-out sentence
        train.append(example)
    random.Random(seed).shuffle(train)
    return train, [examples[i] for i in sorted(held)]
