"""Text → token ids, exactly as the model was trained: the bundle's `tokenizers` JSON plus the
truncation policy. Training, evaluation and serving all encode through this class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from rnnserve_bundle.ascii_path import ascii_tokenizer
from rnnserve_bundle.config import UNK_TOKEN


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    truncated: bool


class TextEncoder:
    """Encodes texts for one model.

    Classifiers keep the first `max_length` tokens; a language model keeps `<bos>` and the last
    tokens of a prefix, since the next word depends on how the prefix ends.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int, keep_tail: bool) -> None:
        self.tokenizer = tokenizer
        # The same ids for ASCII texts, with less work (`rnnserve_bundle.ascii_path`).
        self._ascii = ascii_tokenizer(tokenizer)
        self.max_length = max_length
        self.keep_tail = keep_tail
        self.unk_id = tokenizer.token_to_id(UNK_TOKEN)

    @classmethod
    def from_file(cls, path: Path, max_length: int, keep_tail: bool) -> TextEncoder:
        return cls(Tokenizer.from_file(str(path)), max_length, keep_tail)

    def encode(self, texts: list[str]) -> list[Encoded]:
        results = []
        tokenizer = self.tokenizer
        if self._ascii is not None and all(text.isascii() for text in texts):  # a flag per text: cheap
            tokenizer = self._ascii
        # The fast batch call skips character offsets, which nothing here uses: 10-30% less time.
        for encoding in tokenizer.encode_batch_fast(texts):
            ids = encoding.ids
            truncated = len(ids) > self.max_length
            if truncated:
                ids = [ids[0], *ids[len(ids) - self.max_length + 1 :]] if self.keep_tail else ids[: self.max_length]
            results.append(Encoded(ids or [self.unk_id], truncated))
        return results

    def token(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id) or UNK_TOKEN
