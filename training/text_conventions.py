"""Raw text in, the corpus's own tokens out: the preprocessing a tokenized corpus went through,
found in the corpus and written into the bundle's tokenizer so that text typed by a person is read
the way the training text was written.

Treebank-style corpora (PTB, SST) split contractions (`did n't`, `it 's`), and PTB as distributed
by Mikolov et al. also writes every number as `N`, keeps no sentence punctuation and sets `$` and
`#` apart. A person types `didn't`, `it's`, `$50`, `5%` and `expects.`; without these rules all of
them fall outside the vocabulary. Each rule is switched on only when the corpus shows the
convention, and none changes how the corpus's own (already tokenized) text is read, so a model
trained before the rules existed keeps its vocabulary and ids (`retokenize` checks exactly that).
Text scraped from a web page brings markup no corpus of typed text has (`<br />`, `&#39;`); where
the corpus has none, it is read as the text the page shows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

from rnnserve_bundle.config import BOS_TOKEN, EOS_TOKEN, SPECIAL_TOKENS
from rnnserve_bundle.word_forms import APOSTROPHE_LESS, CONTRACTIONS, CURRENCY_SIGNS

# Characters a treebank-style corpus may have dropped; each is stripped from input only when the
# corpus never uses it.
SENTENCE_PUNCTUATION = ',;:!?"()[]{}\u2013\u2014'
# Format characters that render as nothing: zero-width space, non-joiner and joiner, word joiner,
# byte-order mark (zero-width no-break space), soft hyphen.
INVISIBLE = "[\u200b\u200c\u200d\u2060\ufeff\u00ad]"
# Markup of a web page, which text scraped or exported from one carries (IMDB's reviews are full of
# `<br /><br />`): a tag (a name after `<` or `</`, perhaps attributes; not `<3` or `a < b`), and the
# character references such pages write for what the corpus has as plain characters. One step per
# character they stand for, each pattern starting with its literal `<` or `&`, which the regex
# engine looks for first; `&amp;` goes last, so that `&amp;lt;` reads `&lt;`, as a browser shows it.
# The special tokens (`<unk>`, ...) are no tags: the tokenizer takes them out before it normalizes,
# but the service normalizes a half-typed word on its own (`service/typed_word.py`).
_SPECIAL = "|".join(re.escape(t[1:-1]) for t in SPECIAL_TOKENS)
TAG = rf"<(?!(?:{_SPECIAL})>)/?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>"
MARKUP_STEPS: tuple[tuple[Regex | str, str], ...] = (  # (what is written, what it reads as)
    (Regex(f"{TAG}|&(?:nbsp|#160|#xa0);"), " "),
    (Regex("&(?:#39|#x27|apos|rsquo|lsquo|#8217|#8216);"), "'"),
    (Regex("&(?:quot|#34|#x22|ldquo|rdquo|#8220|#8221);"), '"'),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&amp;", "&"),
)
MARKUP = re.compile(TAG + "|&#?[A-Za-z0-9]+;")
# A number standing alone ("50", "1,500.25", "$50", "5%"), not part of a word ("1990s", "30-day").
NUMBER = r"(?<![\w-])\d+(?:[.,:/]\d+)*(?![\w-])"


@dataclass(frozen=True)
class Conventions:
    number_token: str | None = None  # numbers are written as this token (PTB: N, lower-cased n)
    percent_as_number: bool = False  # "5%" was written "N N"
    split_contractions: bool = False  # "didn't" -> "did n't", "it's" -> "it 's"
    # With split_contractions: the forms typed without an apostrophe that are read as their
    # contraction ("dont" as "don't"): those of APOSTROPHE_LESS the corpus never has as a word.
    apostrophe_less: tuple[str, ...] = ()
    split_currency: bool = False  # "$50" -> "$ N"
    strip_punctuation: str = ""  # characters the corpus never has, removed from input
    strip_final_period: bool = False  # lines carry no sentence-final period
    # Words the corpus writes with a period ("mr.", "u.s."): theirs is never taken for a sentence end.
    abbreviations: tuple[str, ...] = ()
    # With strip_final_period: what a sentence end inside a text ("rose. Then", "2019! It") is read
    # as, where the corpus has one sentence per line: the language model's `<eos>`, which its stream
    # training put between lines, or nothing (""; a classifier's texts hold no such token). None:
    # not handled (bundles made before this rule; their "rose." was one unknown token).
    sentence_end: str | None = None
    # Single letters the corpus writes with a period (PTB's initials, "j. p. morgan"): theirs is
    # no sentence end inside a text either.
    initials: tuple[str, ...] = ()
    # Classifiers read punctuation as tokens of its own ("film," -> "film ,"), as their corpus was
    # read at training; a language model reads the corpus's whitespace tokens as they are.
    split_punctuation: bool = False
    # Tags and character references (the corpus has none) read as the text a browser shows:
    # `<br />` as a space, `&#39;` as `'`. False in bundles made before this rule.
    markup: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def normalizer(self) -> normalizers.Normalizer:
        steps: list[normalizers.Normalizer] = [
            normalizers.NFKC(),
            # Characters that show nothing (zero-width spaces and joiners, soft hyphens, a byte-order
            # mark), which NFKC keeps: text pasted from a web page or a phone carries them inside
            # words, where they would make the word unknown. Removed, as a reader sees the text.
            # (One character class; the quotes below stay literal replacements, which the
            # tokenizer runs faster than a class: BENCHMARKS.md.)
            normalizers.Replace(Regex(INVISIBLE), ""),
            *self._markup_steps(),
            # Typographic apostrophes and quotes as the corpus writes them.
            normalizers.Replace("\u2019", "'"),
            normalizers.Replace("\u2018", "'"),
            normalizers.Replace("\u201c", '"'),
            normalizers.Replace("\u201d", '"'),
            normalizers.Lowercase(),
        ]
        for written, typed in self._apostrophe_less_steps():
            steps.append(normalizers.Replace(Regex(typed), written))
        if self.strip_final_period and self.sentence_end is not None:
            # Before the number rule, which would make "2019." the initial-like "n.".
            steps.append(normalizers.Replace(Regex(self._sentence_end_pattern()), f" {self.sentence_end} "))
        if self.number_token is not None:
            if self.percent_as_number:
                steps.append(normalizers.Replace(Regex(r"\s*%"), f" {self.number_token}"))
            steps.append(normalizers.Replace(Regex(NUMBER), self.number_token))
        if self.strip_punctuation:
            steps.append(normalizers.Replace(Regex(f"[{re.escape(self.strip_punctuation)}]"), " "))
        if self.strip_final_period:
            # The period, or the periods of an ellipsis ("rose...", NFKC's reading of "rose…"), that
            # end the text. (Not `[.\s]+$`: the tokenizer normalizes the pieces between special
            # tokens one by one, and a piece "mr. " before `<unk>` must keep its period.) Inside
            # the text an ellipsis before a space is read as a sentence end, by the rule above.
            steps.append(normalizers.Replace(Regex(_period_not_after(self.abbreviations) + "+$"), ""))
        return normalizers.Sequence(steps)

    def _markup_steps(self) -> list[normalizers.Normalizer]:
        """Before the quotes below, so that `&rsquo;` becomes `’` and then the corpus's `'`."""
        if not self.markup:
            return []
        return [normalizers.Replace(pattern, written) for pattern, written in MARKUP_STEPS]

    def _apostrophe_less_steps(self) -> list[tuple[str, str]]:
        """(what is written, the pattern of what is typed) for the forms of `apostrophe_less`, one
        per ending: "nt" becomes "n't" at the end of "dont", "didnt", ...; "im" becomes "i'm".
        The pattern starts with the ending, a literal that the regex engine looks for before it
        tries the words of the lookbehind. Patterns that start with the lookbehind, or all the
        forms in one step as an empty match, are tried at every character: that version, with 46
        forms, cost 12% more tokenizer time where these four steps cost 9% (BENCHMARKS.md)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for contraction, stems in APOSTROPHE_LESS.items():
            bare = contraction.replace("'", "")
            for stem in stems:
                if stem + bare in self.apostrophe_less:
                    # An apostrophe inside the contraction ("n't"): the ending is the contraction;
                    # before it ("'m"): the stem's last letter and the contraction.
                    key = (
                        (contraction, bare)
                        if not contraction.startswith("'")
                        else (stem[-1] + contraction, stem[-1] + bare)
                    )
                    groups.setdefault(key, []).append(stem + bare)
        return [
            (written, rf"{ending}\b(?<=" + "|".join(rf"\b{form}" for form in forms) + ")")
            for (written, ending), forms in groups.items()
        ]

    def _sentence_end_pattern(self) -> str:
        """A period (or "!" / "?", where the corpus has none) that ends a sentence inside the text:
        followed by whitespace, perhaps after a closing quote or bracket, and not the period of an
        abbreviation or initial the corpus writes. A period that ends the text is left to the
        final-period rule (the sentence may go on: suggestions while typing)."""
        period = _period_not_after((*self.abbreviations, *self.initials))  # "no!" ends one; "no." is PTB's number
        others = "".join(ch for ch in "!?" if ch in self.strip_punctuation)
        end = f"(?:{period}|[{re.escape(others)}])" if others else period
        return f"{end}+(?=[\"')\\]]*\\s)"

    def pre_tokenizer(self) -> pre_tokenizers.PreTokenizer:
        steps: list[pre_tokenizers.PreTokenizer] = [pre_tokenizers.WhitespaceSplit()]
        if self.split_contractions:
            pattern = "|".join(re.escape(c) + "$" for c in CONTRACTIONS)
            steps.append(pre_tokenizers.Split(Regex(pattern), "isolated"))
        if self.split_currency:
            # Inside a class both signs are literal: "^[$#]", as bundles made before the list was shared.
            steps.append(pre_tokenizers.Split(Regex("^[" + "".join(CURRENCY_SIGNS) + "]"), "isolated"))
        if self.split_punctuation:
            steps.append(pre_tokenizers.Whitespace())
        return pre_tokenizers.Sequence(steps)


def _period_not_after(words: tuple[str, ...]) -> str:
    """A pattern for a period that is not the one these words (each ending in its period) end with."""
    keep = "|".join(r"\b" + re.escape(word[:-1]) for word in words)
    return f"(?<!{keep})\\." if keep else r"\."


def _apostrophe_less_forms() -> list[str]:
    return [stem + c.replace("'", "") for c, stems in APOSTROPHE_LESS.items() for stem in stems]


def detect(texts: Iterable[str], split_punctuation: bool = False) -> Conventions:
    """The conventions a corpus shows (whitespace-separated tokens, one text per line). Raw typed
    corpora (SNIPS) show none of the treebank ones, and their tokenizer reads text as before."""
    tokens: Counter[str] = Counter()
    lines = final_periods = 0
    has_markup = False  # PTB's `<unk>` is no tag (`TAG`)
    for text in texts:
        words = text.split()
        if not words:
            continue
        lines += 1
        if not has_markup and ("<" in text or "&" in text):
            has_markup = MARKUP.search(text) is not None
        final_periods += words[-1].endswith(".")
        tokens.update(words)
    total = sum(tokens.values()) or 1
    numbers = sum(n for token, n in tokens.items() if re.fullmatch(NUMBER, token))
    placeholder = next((t for t in ("N", "n", "<num>") if tokens[t] / total >= 0.001), None)
    # Numbers written as a placeholder: the placeholder is frequent and numbers standing alone are not.
    number_token = placeholder.lower() if placeholder is not None and numbers < 0.01 * tokens[placeholder] else None
    characters = set("".join(tokens))
    standalone = sum(tokens[c] for c in CONTRACTIONS)
    split_contractions = standalone / total >= 0.001
    return Conventions(
        number_token=number_token,
        percent_as_number=number_token is not None and "%" not in characters,
        split_contractions=split_contractions,
        apostrophe_less=tuple(
            sorted(form for form in _apostrophe_less_forms() if split_contractions and not tokens[form])
        ),
        split_currency=tokens["$"] / total >= 0.0005 and not any(t.startswith("$") and t != "$" for t in tokens),
        strip_punctuation="".join(ch for ch in SENTENCE_PUNCTUATION if ch not in characters),
        strip_final_period=lines > 0 and tokens["."] == 0 and final_periods / lines < 0.01,
        # (Initials such as "j." are left out here: a text ends in "...n't." or "2019." far more often.
        # Inside a text a sentence end is followed by more, and theirs are kept: `initials`.)
        abbreviations=tuple(sorted(t for t in tokens if len(t) > 2 and t.endswith(".") and t[-2] != ".")),
        sentence_end=("" if split_punctuation else f"{EOS_TOKEN} {BOS_TOKEN}"),
        initials=tuple(sorted(t for t in tokens if len(t) == 2 and t[0].isalpha() and t[1] == ".")),
        split_punctuation=split_punctuation,
        markup=not has_markup,
    )


def apply(tokenizer: Tokenizer, conventions: Conventions) -> None:
    tokenizer.normalizer = conventions.normalizer()
    tokenizer.pre_tokenizer = conventions.pre_tokenizer()
