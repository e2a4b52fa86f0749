"""How a next-word model's tokens are written as text. A treebank-style corpus splits contractions
and currency signs off their words (`did n't`, `$ N`); a reader writes them joined (`didn't`,
`$N`). Which of them a bundle splits is in its `config.json` (`text_conventions`, recorded by
training), so a bundle whose corpus splits nothing is written with a space between every two words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rnnserve_bundle.word_forms import CONTRACTIONS, CURRENCY_SIGNS


@dataclass(frozen=True)
class Spacing:
    joins_previous: frozenset[str] = frozenset()  # written onto the word before them
    joins_next: frozenset[str] = frozenset()  # the word after them is written onto them

    @classmethod
    def of(cls, conventions: dict[str, Any]) -> Spacing:
        return cls(
            frozenset(CONTRACTIONS) if conventions.get("split_contractions") else frozenset(),
            frozenset(CURRENCY_SIGNS) if conventions.get("split_currency") else frozenset(),
        )

    def joins(self, previous: str | None, word: str) -> bool:
        """Whether `word` is written onto `previous` without a space between them."""
        return previous is not None and (word in self.joins_previous or previous in self.joins_next)

    def write(self, words: Sequence[str]) -> str:
        """The words as text; the first is written as it is, whatever came before it."""
        parts: list[str] = []
        previous = None
        for word in words:
            if parts and not self.joins(previous, word):
                parts.append(" ")
            parts.append(word)
            previous = word
        return "".join(parts)
