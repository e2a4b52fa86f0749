"""Word-level tokenizers built with Hugging Face `tokenizers`; the JSON file is what serving loads."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.processors import TemplateProcessing
from tokenizers.trainers import WordLevelTrainer

from rnnserve_bundle.config import BOS_TOKEN, SPECIAL_TOKENS, UNK_TOKEN, Task
from training.text_conventions import Conventions, apply, detect


def build_tokenizer(
    texts: Iterable[str], task: Task, vocab_size: int, min_frequency: int, conventions: Conventions | None = None
) -> Tokenizer:
    """Train a lower-casing word-level vocabulary.

    Raw input is brought to the corpus's own conventions (contractions, numbers, punctuation;
    `text_conventions`). Classifiers also split punctuation from words; the language model reads
    the corpus's whitespace tokens as they are and prefixes every sequence with `<bos>` so that a
    prefix typed by a user is read exactly as a training sentence was.
    """
    texts = list(texts)
    tokenizer = Tokenizer(WordLevel(unk_token=UNK_TOKEN))
    apply(tokenizer, conventions or detect(texts, split_punctuation=task.is_classifier))
    trainer = WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS))
    # A corpus word spelled like a special token (PTB writes `<unk>`) must not be counted as a
    # word: the trainer would give it a second id. It still encodes to the reserved id.
    reserved = set(SPECIAL_TOKENS)
    words = (" ".join(w for w in text.split() if w not in reserved) for text in texts)
    tokenizer.train_from_iterator(words, trainer)
    if not task.is_classifier:
        bos_id = tokenizer.token_to_id(BOS_TOKEN)
        tokenizer.post_processor = TemplateProcessing(single=f"{BOS_TOKEN} $A", special_tokens=[(BOS_TOKEN, bos_id)])
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == index, "special tokens must take the first ids"
    return tokenizer


def encode_all(tokenizer: Tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to `max_length`, never empty (an empty text reads as <unk>)."""
    unk = tokenizer.token_to_id(UNK_TOKEN)
    encoded = []
    for encoding in tokenizer.encode_batch(texts):
        ids = encoding.ids[:max_length]
        encoded.append(ids or [unk])
    return encoded
