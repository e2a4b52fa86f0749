"""Length-bucketed batching and right padding (numpy only, shared by training and evaluation)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from rnnserve_bundle.tensors import pad_batch as pad

__all__ = ["bucket_batches", "pad"]


def bucket_batches(lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0) -> Iterator[list[int]]:
    """Batches of indices of similar length, so that little work goes to padding.

    With `shuffle`, lengths are jittered before sorting and the batch order is shuffled, so that
    each epoch sees different batch compositions while padding stays small.
    """
    rng = random.Random(seed)
    order = sorted(
        range(len(lengths)),
        key=lambda i: lengths[i] + (rng.random() * 2 if shuffle else 0.0),
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    yield from batches
