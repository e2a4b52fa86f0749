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
