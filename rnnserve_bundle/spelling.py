"""A word the vocabulary lacks, read as the vocabulary's word one typing slip away.

People type `waether`, `tomorow`, `trasnfer`; a word-level tokenizer reads each as `<unk>`, and a
classifier loses the one word that named the intent. A word of at least `MIN_LETTERS` letters that
the vocabulary lacks is read as the most frequent vocabulary word at one edit: a letter missing,
added, replaced, or two neighbours swapped (optimal string alignment distance 1). Candidates come
from an index of each vocabulary word's one-letter deletions (the symmetric delete method of
SymSpell, Garbe 2012): every word at distance 1 shares a deletion, or is one, with the typed word,
so a lookup costs a few dictionary reads, not a scan of the vocabulary. Frequency is the id: a
`tokenizers` word-level vocabulary is numbered by count in the training text. A letter held down
for emphasis (`soooo good`) is read first: the word with each run of three or more shortened to two
letters, then to one.

Hand-written rather than a library: the spelling libraries on PyPI (symspellpy, pyspellchecker)
bring their own English dictionaries, and the words to reach are the model's own, whose ids the
tokenizer already has; what is needed here is the one index below.
"""

from __future__ import annotations

import re

from tokenizers import Tokenizer

# Shorter words are too close to each other to correct (`tne`: the, one, tone?) and rarely typos.
MIN_LETTERS = 4
# Unknown words recur (names, slang, the same slips): their answers are kept, up to this many.
REMEMBERED = 1 << 16
# New words a request may have looked up: each costs about 5 us, a remembered one nothing. A
# request of the most tokens the default limits allow, every one a new word, would take 16,384
# lookups (BENCHMARKS.md); chat messages and reviews hold a few unknown words each.
SEARCHES_PER_REQUEST = 1024
_UNSEEN = object()
# A letter three or more times in a row: no English word has one.
_RUN = re.compile(r"(\w)\1{2,}")


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether `a` and `b`, which share a one-letter deletion or are one, differ by one edit."""
    if len(a) != len(b):
        return True  # one is the other with a letter added: its deletion matched
    differ = [i for i in range(len(a)) if a[i] != b[i]]
    if len(differ) == 1:
        return True  # a letter replaced
    if len(differ) != 2 or differ[1] != differ[0] + 1:
        return False
    i, j = differ
    return a[i] == b[j] and a[j] == b[i]  # two neighbours swapped


class Speller:
    """The vocabulary's likeliest word one edit from a typed word it lacks."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        vocabulary = tokenizer.get_vocab()
        self._ids = {word: i for word, i in vocabulary.items() if word.isalpha()}
        # Each deletion (and each word itself) → the vocabulary words it comes from, most frequent
        # first: a word of MIN_LETTERS letters can lose one, and one of MIN_LETTERS - 1 can gain one.
        index: dict[str, list[str]] = {}
        for word in sorted(self._ids, key=self._ids.__getitem__):
            if len(word) >= MIN_LETTERS - 1:
                for key in {word, *_deletions(word)}:
                    index.setdefault(key, []).append(word)
        self._index = index
        self._remembered: dict[str, int | None] = {}

    def correct(self, word: str) -> int | None:
        """The id of the correction of `word` (lower-cased, as the tokenizer normalized it), or None
        when it is a vocabulary word, too short, not all letters, or no word is one edit away."""
        return self.correct_many([word])[0]

    def correct_many(self, words: list[str], searches: int | None = None) -> list[int | None]:
        """`correct` for each word, with at most `searches` words not seen before looked up (None:
        no bound): past them a word stays unknown, so that a request of nonsense words costs a
        bounded time."""
        searches = len(words) if searches is None else searches
        corrections: list[int | None] = []
        for word in words:
            if len(word) < MIN_LETTERS or not word.isalpha() or word in self._ids:
                corrections.append(None)
                continue
            # One read, not a test and a read: another thread's clear() may come between the two.
            remembered = self._remembered.get(word, _UNSEEN)
            if remembered is _UNSEEN:
                if searches <= 0:
                    corrections.append(None)
                    continue
                searches -= 1
                if len(self._remembered) >= REMEMBERED:
                    self._remembered.clear()  # a bound, not a policy: a stream of new words starts over
                remembered = self._remembered[word] = self._search(word)
            corrections.append(remembered)  # type: ignore[arg-type]
        return corrections

    def _search(self, word: str) -> int | None:
        # A letter held down for emphasis (`soooo`, `goood`): the word with its runs shortened to
        # two letters, then to one, when that is a vocabulary word (Han and Baldwin 2011).
        if _RUN.search(word):
            for shortened in (_RUN.sub(r"\1\1", word), _RUN.sub(r"\1", word)):
                if shortened in self._ids:
                    return self._ids[shortened]
            word = _RUN.sub(r"\1\1", word)
            if len(word) < MIN_LETTERS:
                return None
        best: int | None = None
        for key in (word, *_deletions(word)):
            for candidate in self._index.get(key, ()):
                rank = self._ids[candidate]
                if best is not None and rank >= best:
                    break  # each list is in frequency order
                if _one_edit_apart(word, candidate):
                    best = rank
                    break
        return best
