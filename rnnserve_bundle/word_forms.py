"""The treebank's word forms that a bundle's tokenizer splits off and a reader joins back:
contractions (`did n't`, `it 's`) and currency signs (`$ N`). Training writes tokenizers that split
them (`training.text_conventions`); the service writes them joined again in what it answers
(`service.spacing`) and reads a half-typed one (`service.typed_word`). One list for both sides."""

from __future__ import annotations

# Written onto the word before them: "did" + "n't" is "didn't".
CONTRACTIONS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")
# Written onto the word after them: "$" + "50" is "$50".
CURRENCY_SIGNS = ("$", "#")
# Contractions as typed without their apostrophe ("dont", "im"): each contraction with the words
# it joins onto, where the joined form is no English word of its own (left out: "its", "lets",
# "were", "well", "ill", "id"; "cant" and "wont" are words too, rarely typed as such). Only the
# most typed: each group is a step of the tokenizer's normalizer, which every text pays whether or
# not it holds the form (measured in BENCHMARKS.md), so "youre", "theyll" or "hes" stay unknown
# words. The words listed for "n't" are also the only ones it joins onto (`service.typed_word`).
APOSTROPHE_LESS: dict[str, tuple[str, ...]] = {
    "n't": (
        "do", "does", "did", "is", "are", "was", "were", "has", "have", "had",
        "would", "could", "should", "must", "need", "might", "ca", "wo", "ai",
    ),
    "'m": ("i",),
    "'ve": ("i",),
    "'s": ("that", "what"),
}  # fmt: skip
