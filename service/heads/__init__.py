"""One head per task (`base.Head`): a new task adds its module and one line here."""

from __future__ import annotations

from rnnserve_bundle.config import BundleConfig, Task
from rnnserve_bundle.encoder import TextEncoder
from service.heads.base import Head, Runner
from service.heads.classifier import ClassifierHead
from service.heads.next_word import DEFAULT_NEXT_WORDS, NextWordHead

__all__ = ["DEFAULT_NEXT_WORDS", "Head", "NextWordHead", "Runner", "head_for"]


def head_for(config: BundleConfig, encoder: TextEncoder, can_complete: bool, name: str) -> Head:
    if config.task is Task.NEXT_WORD:
        return NextWordHead(encoder, config.vocab_size, can_complete, name, config.text_conventions or {})
    return ClassifierHead(config)
