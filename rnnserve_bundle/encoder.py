"""Text → token ids, exactly as the model was trained: the bundle's `tokenizers` JSON plus the
truncation policy. Training, evaluation and serving all encode through this class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Encoding, Tokenizer

from rnnserve_bundle.ascii_path import ascii_tokenizer
from rnnserve_bundle.config import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, UNK_TOKEN
from rnnserve_bundle.spelling import Speller

# Tokens that end a sentence, where a long text is cut into windows.
SENTENCE_ENDS = (".", "!", "?")


class TokenLimit(ValueError):
    """The texts of one call come to more tokens than the caller allows."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"{tokens} tokens exceed the limit of {limit}")
        self.tokens, self.limit = tokens, limit


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    truncated: bool
    # A classifier's text longer than `max_length`, read in windows: the windows after the first
    # (`ids`). The classifier answers the mean of the windows' probabilities.
    more: tuple[list[int], ...] = ()

    @property
    def windows(self) -> list[list[int]]:
        return [self.ids, *self.more]

    @property
    def tokens(self) -> int:
        return len(self.ids) + sum(len(w) for w in self.more)


class TextEncoder:
    """Encodes texts for one model.

    Classifiers keep the first `max_length` tokens, or with `windows` read a longer text whole, in
    windows of at most `max_length` tokens; a language model keeps `<bos>` and the last tokens of a
    prefix, since the next word depends on how the prefix ends. With `spelling`, a word the
    vocabulary lacks reads as its word one typing slip away (`rnnserve_bundle.spelling`).
    """

    def __init__(
        self, tokenizer: Tokenizer, max_length: int, keep_tail: bool, windows: bool = False, spelling: bool = False
    ) -> None:
        if keep_tail and windows:
            raise ValueError("windows are for classifiers, which keep the start of a text")
        self.tokenizer = tokenizer
        self.windows = windows
        self._sentence_ends = frozenset(i for t in SENTENCE_ENDS if (i := tokenizer.token_to_id(t)) is not None)
        # The same ids for ASCII texts, with less work (`rnnserve_bundle.ascii_path`).
        self._ascii = ascii_tokenizer(tokenizer)
        self.max_length = max_length
        self.keep_tail = keep_tail
        self.unk_id = tokenizer.token_to_id(UNK_TOKEN)
        self._pad_id = tokenizer.token_to_id(PAD_TOKEN)
        self._bos_id = tokenizer.token_to_id(BOS_TOKEN)
        self._eos_id = tokenizer.token_to_id(EOS_TOKEN)
        # A tokenizer that starts each text with <bos> (the language model's) also marks each
        # sentence end inside a text as <eos> <bos>; a classifier's marks nothing.
        self._marks_sentences = tokenizer.post_processor is not None
        self._controls = frozenset((self._pad_id, self._bos_id, self._eos_id))
        self._speller = Speller(tokenizer) if spelling else None
        normalizer = tokenizer.normalizer
        self._normalize = normalizer.normalize_str if normalizer is not None else str.lower

    @classmethod
    def from_file(
        cls, path: Path, max_length: int, keep_tail: bool, windows: bool = False, spelling: bool = False
    ) -> TextEncoder:
        return cls(Tokenizer.from_file(str(path)), max_length, keep_tail, windows, spelling)

    def encode(self, texts: list[str], max_tokens: int | None = None, max_searches: int | None = None) -> list[Encoded]:
        """The texts' ids, as the model reads them; `TokenLimit` when they come to more than
        `max_tokens` (every window counted), found before any spelling is corrected, so that an
        oversized request costs no more than its tokenizing. With spelling, at most `max_searches`
        words not seen before are looked up (`Speller.correct_many`)."""
        tokenizer = self.tokenizer
        if self._ascii is not None and all(text.isascii() for text in texts):  # a flag per text: cheap
            tokenizer = self._ascii
        # The fast batch call skips character offsets: 10-30% less time, where no unknown word's
        # characters must be found to correct its spelling.
        spelling = self._speller is not None
        encodings = tokenizer.encode_batch(texts) if spelling else tokenizer.encode_batch_fast(texts)
        rows = [self.without_typed_controls(encoding.ids) for encoding in encodings]
        if max_tokens is not None:
            tokens = sum(self._read_length(len(ids)) for ids in rows)
            if tokens > max_tokens:
                raise TokenLimit(tokens, max_tokens)
        if spelling:
            self._spell(texts, rows, encodings, max_searches)
        return [self._fitted(ids) for ids in rows]

    def _read_length(self, length: int) -> int:
        """How many of a text's `length` tokens the model reads (`Encoded.tokens`)."""
        return max(length, 1) if self.windows or length <= self.max_length else self.max_length

    def _fitted(self, ids: list[int]) -> Encoded:
        if len(ids) <= self.max_length:
            return Encoded(ids or [self.unk_id], False)
        if self.windows:
            first, *more = self._split(ids)
            return Encoded(first, False, tuple(more))
        if self.keep_tail:
            return Encoded([ids[0], *ids[len(ids) - self.max_length + 1 :]], True)
        return Encoded(ids[: self.max_length], True)

    def _spell(
        self, texts: list[str], rows: list[list[int]], encodings: list[Encoding], max_searches: int | None
    ) -> None:
        """Each unknown word of `rows` that is one edit from a vocabulary word read as that word, in
        place (the encodings' offsets name each token's characters in its text)."""
        assert self._speller is not None
        unk = self.unk_id
        where: list[tuple[list[int], int]] = []
        words: list[str] = []
        for text, ids, encoding in zip(texts, rows, encodings, strict=True):
            if unk not in ids:  # one scan in C: most texts stop here
                continue
            spans = encoding.offsets
            for position, token in enumerate(ids):
                if token == unk:
                    start, end = spans[position]
                    piece = text[start:end]
                    # An ASCII word normalizes to its lower case; anything else as the tokenizer would.
                    words.append(piece.lower() if piece.isascii() else self._normalize(piece).strip())
                    where.append((ids, position))
        for (ids, position), correction in zip(where, self._speller.correct_many(words, max_searches), strict=True):
            if correction is not None:
                ids[position] = correction

    def ids(
        self, text: str, start: int | None = None, max_tokens: int | None = None, max_searches: int | None = None
    ) -> list[int]:
        """One text's ids, all of them: from `<bos>` (a language model's), or after `start`, the
        last id already read, when the text continues one (then `start` leads the list). The limits
        are `encode`'s, checked in the same order."""
        encoding = self.tokenizer.encode(text, add_special_tokens=start is None)
        lead = [] if start is None else [start]
        ids = self.without_typed_controls([*lead, *encoding.ids])
        if max_tokens is not None and len(ids) > max_tokens:
            raise TokenLimit(len(ids), max_tokens)
        if self._speller is None:
            return ids
        own = ids[len(lead) :]  # the text's own tokens, which its offsets name
        self._spell([text], [own], [encoding], max_searches)
        return [*lead, *own]

    def without_typed_controls(self, ids: list[int]) -> list[int]:
        """`ids` with every control token that the text itself spelled (`<pad>`, `<bos>`, `<eos>`,
        typed, pasted, as `&lt;pad&gt;` or in full-width brackets) read as an unknown word.

        The tokenizer matches its special tokens in raw text and its vocabulary holds them, so
        without this a text could put padding mid-sequence or a sentence start a model never saw
        there. Only the tokenizer's own marks stay: a language model's leading `<bos>` (or the id a
        continued text starts from) and the `<eos> <bos>` its normalizer writes at a sentence end.
        `<unk>` stays: typed, it still means a word the vocabulary lacks (PTB writes it so)."""
        pad, bos, eos = self._pad_id, self._bos_id, self._eos_id
        if not self._marks_sentences:
            if self._controls.isdisjoint(ids):  # one pass in C, 0.1 us: the common text stops here
                return ids
            return [self.unk_id if i in self._controls else i for i in ids]
        if pad not in ids and eos not in ids and ids.count(bos) == (1 if ids and ids[0] == bos else 0):
            return ids
        last = len(ids) - 1
        kept = ids[:1]
        for position in range(1, len(ids)):
            token = ids[position]
            if token == eos:
                mark = position < last and ids[position + 1] == bos
            elif token == bos:
                mark = kept[-1] == eos  # an <eos> is kept only before a <bos>
            else:
                mark = token != pad
            kept.append(token if mark else self.unk_id)
        return kept

    def _split(self, ids: list[int]) -> list[list[int]]:
        """Whole sentences, in order, packed into windows of at most `max_length` tokens; a sentence
        longer than a window fills windows of its own, cut where each ends. Windows of whole
        sentences read like the texts a classifier was trained on (sentences, short messages)."""
        windows: list[list[int]] = []
        window: list[int] = []
        sentence: list[int] = []
        for position, token in enumerate(ids):
            sentence.append(token)
            if token not in self._sentence_ends and position < len(ids) - 1:
                continue
            if len(window) + len(sentence) > self.max_length and window:
                windows.append(window)
                window = []
            while len(sentence) > self.max_length:
                windows.append(sentence[: self.max_length])
                sentence = sentence[self.max_length :]
            window += sentence
            sentence = []
        windows.append(window)
        return windows

    def token(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id) or UNK_TOKEN
