"""What the word being typed can become. An editor sends text as it is typed, so the last word is
often half a word: "didn", "it'", "$5". A treebank-style tokenizer would read "didn't" as two of
the model's words (`did n't`) and "$5" as two more (`$ N`), so a half-typed word is not always the
start of one vocabulary word:

- pieces the typed characters already hold whole are read first ("$" of "$5", "it" of "it's");
- the rest is the start of one more word, found among the vocabulary's words in order;
- a number being typed can only become the corpus's number token, not the words that start
  with its letters ("5" is PTB's `n`, not "nearly");
- a word followed by the start of a contraction ("didn", "we'r") may be the word and the whole
  contraction ("didn't", "we're"), which the model scores as two words.

`service.heads.next_word` reads the pieces and scores the candidates; this module only says
what they are."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from rnnserve_bundle.config import SPECIAL_TOKENS
from rnnserve_bundle.word_forms import APOSTROPHE_LESS, CONTRACTIONS, CURRENCY_SIGNS

# Typed words holding more whole pieces than this ("5%%%%", PTB's "n n n n n") are no word of the corpus: each
# piece is one more step of the model per keystroke, so none is suggested.
MAX_WHOLE_PIECES = 3


@dataclass(frozen=True)
class Reading:
    """One reading of the typed characters: whole pieces, then the start of one more word."""

    whole: tuple[int, ...]  # ids of the pieces the typed word holds whole, each a vocabulary word
    start: str  # the start of the next word, as the corpus writes it ("": any word)
    number: bool  # a number is being typed: the next word can only be the number token


def in_typed_case(word: str, typed: str) -> str:
    """The word in the case it is being typed in: the tokenizer lower-cases what it reads, while a
    person who typed "Compan" or "COMPA" is writing "Company" or "COMPANY"."""
    letters = [ch for ch in typed if ch.isalpha()]
    if not letters or not letters[0].isupper():
        return word
    if len(letters) > 1 and all(ch.isupper() for ch in letters):
        return word.upper()
    return word[:1].upper() + word[1:]


class TypedWords:
    def __init__(self, tokenizer: Tokenizer, vocabulary: list[str], conventions: dict[str, Any]) -> None:
        # The tokenizer's own steps, read once: `Tokenizer.normalizer` builds a new wrapper per access.
        self._normalizer, self._pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
        self._ids = {w: i for i, w in enumerate(vocabulary) if w not in SPECIAL_TOKENS}
        # Words in order, for the ones that start with what is being typed (a bisect, not a scan).
        words = sorted(self._ids.items())
        self._sorted_words = [w for w, _ in words]
        self._sorted_ids = np.array([i for _, i in words], dtype=np.int64)
        self._number_token = conventions.get("number_token")
        self._signs = frozenset(CURRENCY_SIGNS) if conventions.get("split_currency") else frozenset()
        contractions = CONTRACTIONS if conventions.get("split_contractions") else ()
        self._contractions = [(c, self._ids[c]) for c in contractions if c in self._ids]
        # "n't" joins onto a few verbs only ("don" is "don't" or "done", never "bee" + "n't"); the
        # others start with an apostrophe, which says that a contraction is being typed.
        self._joins_not = frozenset(self._ids[w] for w in APOSTROPHE_LESS["n't"] if w in self._ids)

    def read(self, typed: str) -> Reading | None:
        """The typed word as whole pieces and the start of one more; None when it holds a piece
        the vocabulary lacks, or more whole pieces than a word of the corpus does."""
        normalizer, pre_tokenizer = self._normalizer, self._pre_tokenizer
        text = normalizer.normalize_str(typed) if normalizer is not None else typed
        pieces = [p for p, _ in pre_tokenizer.pre_tokenize_str(text)] if pre_tokenizer is not None else text.split()
        if pieces and pieces[-1] in self._signs:
            pieces.append("")  # "$": a whole sign; the number after it is still to come
        start = pieces.pop() if pieces else ""
        # A whole piece the model does not know ("xyzzy" of "xyzzy's", a typed "<unk>") would be
        # offered as the characters typed, which the model never read: no suggestion, as for a
        # word that no vocabulary word starts with.
        if len(pieces) > MAX_WHOLE_PIECES or any(p not in self._ids for p in pieces):
            return None
        number = start == self._number_token and any(ch.isdigit() for ch in typed)
        return Reading(tuple(self._ids[p] for p in pieces), start, number)

    def starting_with(self, reading: Reading) -> np.ndarray:
        """Ids of the words that `reading.start` may be the beginning of."""
        if reading.number:
            number_id = self._ids.get(reading.start)
            return np.array([] if number_id is None else [number_id], dtype=np.int64)
        start = bisect.bisect_left(self._sorted_words, reading.start)
        end = bisect.bisect_left(self._sorted_words, reading.start + "\U0010ffff")
        return self._sorted_ids[start:end]

    def with_contraction(self, reading: Reading) -> list[tuple[int, int]]:
        """(word, contraction) id pairs that `reading.start` may be typed towards: a word of the
        vocabulary followed by the start of a contraction ("didn": did + n't; "we'r": we + 're)."""
        pairs = []
        for contraction, contraction_id in self._contractions:
            for cut in range(1, len(contraction)):
                if not reading.start.endswith(contraction[:cut]):
                    continue
                word_id = self._ids.get(reading.start[:-cut])
                if word_id is not None and (contraction != "n't" or word_id in self._joins_not):
                    pairs.append((word_id, contraction_id))
        return pairs
