"""`retokenize`: a copy of a bundle whose tokenizer reads raw typed text the way its corpus was
written (`text_conventions`), with the same vocabulary, ids and weights.

The conventions are found in the training corpus; the copy is written only when the corpus's own
lines encode to the same ids as before (a handful of lines may differ, at most `MAX_CHANGED`), so
nothing the model learnt is read differently.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tokenizers import Tokenizer

from rnnserve_bundle.config import TOKENIZER_FILE, BundleConfig
from training.data import DataError, Example
from training.text_conventions import apply, detect

MAX_CHANGED = 0.001  # share of corpus lines whose ids may change


def retokenize(bundle: Path, corpus: list[Example], out: Path) -> BundleConfig:
    config = BundleConfig.load(bundle)
    texts = [e.text for e in corpus]
    conventions = detect(texts, split_punctuation=config.task.is_classifier)
    before = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    after = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    apply(after, conventions)
    changed = [
        text
        for text, old, new in zip(texts, before.encode_batch(texts), after.encode_batch(texts), strict=True)
        if old.ids != new.ids
    ]
    if len(changed) > MAX_CHANGED * len(texts):
        raise DataError(
            f"the corpus's conventions would change the ids of {len(changed)} of {len(texts)} lines "
            f"(first: {changed[0][:80]!r}); not written"
        )
    staging = out.parent / f".{out.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle, staging)
    after.save(str(staging / TOKENIZER_FILE))
    config.text_conventions = conventions.as_dict()
    config.export = {
        **config.export,
        "retokenized": {
            "from": str(bundle),
            "corpus_lines": len(texts),
            "lines_with_changed_ids": len(changed),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    config.save(staging)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out)
    return config
