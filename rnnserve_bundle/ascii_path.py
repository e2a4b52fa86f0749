"""A bundle's tokenizer for ASCII text: the same pipeline less the normalizer steps that cannot
change ASCII text, so the same ids for less work.

A bundle's normalizer starts with steps for typed Unicode (NFKC, typographic quotes and
apostrophes replaced by ASCII ones). On ASCII text they change nothing but still cost: the library
tracks every character's alignment through each step (what dropping them saves: BENCHMARKS.md,
against other servers). Only steps that are the identity on every ASCII text go: the Unicode
normalization forms and accent stripping (ASCII characters have no decomposition and no combining
marks) and replacements of a literal string that holds a non-ASCII character (which never occurs
in ASCII text).
"""

from __future__ import annotations

import json

from tokenizers import Tokenizer

_IDENTITY_ON_ASCII = frozenset({"NFC", "NFD", "NFKC", "NFKD", "StripAccents"})


def identity_on_ascii(step: dict) -> bool:
    """Whether a normalizer step (its JSON form) leaves every ASCII text unchanged."""
    if step.get("type") in _IDENTITY_ON_ASCII:
        return True
    if step.get("type") == "Replace":
        literal = (step.get("pattern") or {}).get("String")
        return isinstance(literal, str) and not literal.isascii()
    return False


def ascii_tokenizer(tokenizer: Tokenizer) -> Tokenizer | None:
    """`tokenizer` without its normalizer steps that are the identity on ASCII text; None when it
    has none to drop."""
    spec = json.loads(tokenizer.to_str())
    normalizer = spec.get("normalizer")
    if not normalizer:
        return None
    steps = normalizer["normalizers"] if normalizer.get("type") == "Sequence" else [normalizer]
    kept = [step for step in steps if not identity_on_ascii(step)]
    if len(kept) == len(steps):
        return None
    spec["normalizer"] = {"type": "Sequence", "normalizers": kept} if kept else None
    return Tokenizer.from_str(json.dumps(spec))
