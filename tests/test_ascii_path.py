"""ASCII text is encoded by the bundle's tokenizer less the steps that cannot change it, to the same
ids; any other text goes through the whole tokenizer."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from tokenizers import Regex, Tokenizer, normalizers
from tokenizers.models import WordLevel

from rnnserve_bundle.ascii_path import ascii_tokenizer, identity_on_ascii
from rnnserve_bundle.config import TOKENIZER_FILE
from rnnserve_bundle.encoder import TextEncoder

TYPED = [
    "It doesn't expect a profit of $1,500.25 million, Mr. Smith said.",
    'a "charming" [sort of] {film} -- 5% better; i\'m sure!',
    "what's the weather in new york at 5:30 pm?",
    "  tabs\tand\nnew lines  ",
    "u.s. stocks rose 2 % ... or did they ?!",
]


def random_ascii(rng: random.Random, count: int) -> list[str]:
    alphabet = string.printable + "\x01\x7f"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(count)]


@pytest.mark.parametrize("model", ["sentiment", "intent", "next-word"])
def test_ascii_text_gets_the_same_ids(model_repository: Path, model: str) -> None:
    tokenizer = Tokenizer.from_file(str(model_repository / model / "1" / TOKENIZER_FILE))
    fast = ascii_tokenizer(tokenizer)
    assert fast is not None  # every bundle's normalizer starts with NFKC and typographic quotes
    texts = TYPED + random_ascii(random.Random(13), 500)
    assert [e.ids for e in fast.encode_batch_fast(texts)] == [e.ids for e in tokenizer.encode_batch_fast(texts)]


def test_other_text_goes_through_the_whole_tokenizer(model_repository: Path) -> None:
    tokenizer = Tokenizer.from_file(str(model_repository / "sentiment" / "1" / TOKENIZER_FILE))
    encoder = TextEncoder(tokenizer, 64, keep_tail=False)
    typed, typographic = "it doesn't work", "it doesn\u2019t work"  # a typographic apostrophe
    assert [e.ids for e in encoder.encode([typed, typographic])] == [tokenizer.encode(typed).ids] * 2
    assert encoder.encode(["\uff21\uff22\uff23"])[0].ids == tokenizer.encode("abc").ids  # NFKC: full-width letters


def test_only_steps_that_cannot_change_ascii_are_dropped() -> None:
    assert identity_on_ascii({"type": "NFKC"}) and identity_on_ascii({"type": "StripAccents"})
    assert identity_on_ascii({"type": "Replace", "pattern": {"String": "\u2019"}, "content": "'"})
    assert not identity_on_ascii({"type": "Replace", "pattern": {"String": "'"}, "content": " "})
    assert not identity_on_ascii({"type": "Replace", "pattern": {"Regex": "\u2019"}, "content": "'"})
    assert not identity_on_ascii({"type": "Lowercase"})
    tokenizer = Tokenizer(WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex("[()]"), " ")])
    assert ascii_tokenizer(tokenizer) is None  # nothing to drop: the whole tokenizer serves
    tokenizer.normalizer = normalizers.NFKC()
    fast = ascii_tokenizer(tokenizer)
    assert fast is not None and fast.normalizer is None and fast.encode("a").ids == [1]
