"""The batch queue: items in arrival order and grouped by length, so that forming a length-aware
batch costs the batch's size, not the queue's depth (a deep queue under load holds thousands)."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Slot(Generic[T]):
    __slots__ = ("item", "length", "taken")

    def __init__(self, item: T, length: int) -> None:
        self.item = item
        self.length = length
        self.taken = False


class LengthQueue(Generic[T]):
    """`take(n)` gives every item when n or fewer wait; otherwise the oldest item and those whose
    lengths are nearest its own (the shorter side first on ties, oldest first within a length), so
    a batch pads little and the oldest item never starves."""

    def __init__(self, length: Callable[[T], int]) -> None:
        self._length = length
        self._arrivals: deque[_Slot[T]] = deque()  # taken slots leave lazily, from the front
        self._by_length: dict[int, deque[_Slot[T]]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, item: T) -> None:
        slot = _Slot(item, self._length(item))
        self._arrivals.append(slot)
        self._by_length.setdefault(slot.length, deque()).append(slot)
        self._size += 1

    def oldest(self) -> T:
        while self._arrivals[0].taken:
            self._arrivals.popleft()
        return self._arrivals[0].item

    def take(self, n: int) -> list[T]:
        if self._size <= n:
            items = [slot.item for slot in self._arrivals if not slot.taken]
            self._arrivals.clear()
            self._by_length.clear()
            self._size = 0
            return items
        self.oldest()
        target = self._arrivals[0].length
        lengths = sorted(self._by_length)
        below = bisect_left(lengths, target) - 1  # next shorter length to visit
        above = below + 1  # the target itself, then longer lengths
        chosen: list[T] = []
        while len(chosen) < n:
            take_shorter = below >= 0 and (above >= len(lengths) or target - lengths[below] <= lengths[above] - target)
            length = lengths[below] if take_shorter else lengths[above]
            if take_shorter:
                below -= 1
            else:
                above += 1
            bucket = self._by_length[length]
            while bucket and len(chosen) < n:
                slot = bucket.popleft()
                slot.taken = True
                chosen.append(slot.item)
            if not bucket:
                del self._by_length[length]
        self._size -= len(chosen)
        return chosen
