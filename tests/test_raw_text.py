"""Raw typed text is read the way the corpus was written, a text cannot spell the special tokens,
suggestions never offer them; the corpus's number token is marked as a placeholder."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from tokenizers import Tokenizer

from rnnserve_bundle.config import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, BundleConfig
from rnnserve_bundle.encoder import TextEncoder
from tests.conftest import run_cli
from training.text_conventions import Conventions, detect

PTB_LIKE = [
    "the company said it does n't expect a loss of $ N million",
    "mr. smith 's firm rose N N to N in the u.s. market",
    "profits fell N N in the third quarter",
] * 50
SST_LIKE = ["it 's a charming , funny film .", "the 2 leads do n't click ; 90 minutes of boredom ."] * 50


def test_conventions_are_found_in_the_corpus() -> None:
    ptb = detect(PTB_LIKE)
    assert ptb.number_token == "n" and ptb.percent_as_number and ptb.split_contractions and ptb.split_currency
    assert "," in ptb.strip_punctuation and ptb.strip_final_period and "mr." in ptb.abbreviations
    assert ptb.sentence_end == "<eos> <bos>"  # the language model's stream between two lines
    classifier = detect(PTB_LIKE, split_punctuation=True)
    assert classifier.sentence_end == ""  # a classifier's texts hold no boundary token: removed
    normalized = classifier.normalizer().normalize_str("Profits fell. Mr. Smith said.")
    assert normalized.split() == ["profits", "fell", "mr.", "smith", "said"]
    sst = detect(SST_LIKE)
    assert sst.number_token is None and sst.split_contractions
    assert "," not in sst.strip_punctuation and ";" not in sst.strip_punctuation and not sst.strip_final_period


def test_an_abbreviation_keeps_its_period_but_not_an_exclamation() -> None:
    conventions = Conventions(
        strip_punctuation="!?,",
        strip_final_period=True,
        abbreviations=("mr.", "no."),
        initials=("j.",),
        sentence_end="<eos> <bos>",
    )
    normalized = conventions.normalizer().normalize_str('Mr. J. Smith said no! No. 5 rose. "Fine." Ok? Yes.')
    assert normalized.split() == [
        "mr.", "j.", "smith", "said", "no", "<eos>", "<bos>", "no.", "5", "rose", "<eos>", "<bos>", '"fine',
        "<eos>", "<bos>", '"', "ok", "<eos>", "<bos>", "yes",
    ]  # fmt: skip


def test_ellipses_and_invisible_characters() -> None:
    conventions = detect(PTB_LIKE)
    normalize = conventions.normalizer().normalize_str
    # An ellipsis that ends the text goes as a final period does, typed or as one character (NFKC
    # reads "…" as "..."); an abbreviation keeps its own period before it.
    for typed in ("Profits fell...", "Profits fell…", "Profits fell ...", "Profits fell.."):
        assert normalize(typed).split() == ["profits", "fell"], typed
    assert normalize("In the U.S....").split() == ["in", "the", "u.s."]
    # Inside the text, before a space, it ends a sentence as a period does.
    assert normalize("Profits fell… Mr. Smith said").split() == [
        "profits", "fell", "<eos>", "<bos>", "mr.", "smith", "said",
    ]  # fmt: skip
    # Characters that show nothing do not break the word they sit in.
    assert normalize("\ufeffthe com\u00adpany\u200b said it\u2060 rose") == "the company said it rose"


def test_markup_reads_as_the_text_a_browser_shows() -> None:
    conventions = detect([*SST_LIKE, 'a " quoted " film'], split_punctuation=True)
    assert conventions.markup
    normalize = conventions.normalizer().normalize_str
    assert normalize("A <b>masterpiece</b>.<br /><br />I didn&#39;t blink").split() == [
        "a", "masterpiece", ".", "i", "didn't", "blink",
    ]  # fmt: skip
    assert normalize('<p class="review">It&rsquo;s &quot;fine&quot;&nbsp;&amp; dull</p>').split() == [
        "it's", '"fine"', "&", "dull",
    ]  # fmt: skip
    # Escaped markup is text (a browser shows `&lt;b&gt;` as `<b>`), and what only looks like a
    # tag is kept: a heart, a comparison, a reference with no closing semicolon.
    assert normalize("&amp;lt;b&amp;gt; &lt;i&gt;") == "&lt;b&gt; <i>"
    assert normalize("i <3 it, a < b > c, r&b, at&t &amp") == "i <3 it, a < b > c, r&b, at&t &amp"
    # A special token is no tag, even where a half-typed word is normalized on its own.
    assert normalize("$<unk> <eos>n't") == "$<unk> <eos>n't"
    # A corpus that has markup of its own keeps reading it as it was trained (PTB's `<unk>` is a
    # special token, not markup).
    assert not detect([*SST_LIKE, "a <i>bold</i> film"]).markup
    assert not detect([*SST_LIKE, "tom &amp; jerry"]).markup
    assert detect([*PTB_LIKE, "the <unk> rose"]).markup


def test_contractions_typed_without_an_apostrophe() -> None:
    # Where the corpus splits contractions and never has the joined form as a word.
    corpus = [*PTB_LIKE, "we 're sure it 's cant not i 'm"]
    conventions = detect(corpus)
    assert "dont" in conventions.apostrophe_less and "im" in conventions.apostrophe_less
    assert "cant" not in conventions.apostrophe_less  # a word of this corpus: read as itself
    normalized = conventions.normalizer().normalize_str("Im sure they dont. Whats more, its cant; isnt it")
    assert normalized.split() == [
        "i'm", "sure", "they", "don't", "<eos>", "<bos>", "what's", "more", "its", "cant", "isn't", "it",
    ]  # fmt: skip
    # Words of their own ("its", "well", "were", "ill") and longer words are never rewritten.
    assert (
        conventions.normalizer().normalize_str("its well were ill condont donts") == "its well were ill condont donts"
    )
    # A raw typed corpus (SNIPS-like) shows no treebank contractions: typed text is read as written.
    assert detect(["i dont want jazz", "play im not okay by dolly"] * 50).apostrophe_less == ()


def test_typed_text_meets_the_corpus_tokens(model_repository: Path) -> None:
    bundle = model_repository / "next-word" / "1"
    config = BundleConfig.load(bundle)
    assert config.text_conventions is not None and config.text_conventions["number_token"] == "n"
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    typed = tokenizer.encode("It doesn’t expect a profit of $1,500.25 million, Mr. Smith said.").tokens
    assert typed == [
        "<bos>", "it", "does", "n't", "expect", "a", "profit", "of", "$", "n", "million", "mr.", "smith", "said",
    ]  # fmt: skip
    corpus = tokenizer.encode("it does n't expect a profit of $ N million mr. smith said").tokens
    assert corpus == typed
    assert tokenizer.encode("It doesnt expect a profit of $1,500.25 million, Mr. Smith said.").tokens == typed
    # A sentence end inside the text is the stream's boundary, as training read it between lines;
    # an abbreviation's period is not one, nor is the period that ends the text.
    typed = tokenizer.encode("The bank said 5%. Mr. Smith said it expects a merger! The market said.").tokens
    assert typed == [
        "<bos>", "the", "bank", "said", "n", "n", "<eos>", "<bos>", "mr.", "smith", "said", "it", "expects", "a",
        "merger", "<eos>", "<bos>", "the", "market", "said",
    ]  # fmt: skip


def test_sentence_ends_inside_a_text(client: httpx.Client) -> None:
    # After a finished sentence the editor is offered the words that start one.
    def suggest(text: str) -> list[str]:
        return [s["token"] for s in client.post("/suggest", json={"model": "next-word", "text": text}).json()["next"]]

    assert suggest("The bank said 5%. ") == suggest("")
    assert suggest("The bank said 5%. ") != suggest("The bank said 5% ")


def test_suggestions_mark_the_number_token_and_never_offer_special_tokens(client: httpx.Client) -> None:
    body = {"model": "next-word", "inputs": ["The company reported a loss of", "It doesn't"], "params": {"top_k": 30}}
    outputs = client.post("/predict", json=body).json()["outputs"]
    for output in outputs:
        tokens = [s["token"] for s in output["next"]]
        assert not set(tokens) & set(SPECIAL_TOKENS)
        for suggestion in output["next"]:
            assert suggestion.get("placeholder") == ("number" if suggestion["token"] == "n" else None)
    assert any(s["token"] == "n" for s in outputs[0]["next"])
    completion = {"model": "next-word", "inputs": ["the bank"], "params": {"max_words": 8, "strategy": "beam"}}
    for output in client.post("/predict", json=completion).json()["outputs"]:
        for option in output["completions"]:
            assert not set(option["tokens"]) & set(SPECIAL_TOKENS)
    metadata = client.get("/v2/models/next-word").json()
    assert metadata["parameters"]["placeholders"] == {"n": "number"}


def test_retokenize_keeps_ids_and_refuses_another_corpus(
    model_repository: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "next-word" / "2"
    corpus = str(data_dir / "text" / "train.txt")
    result = run_cli(
        "retokenize", "--model", str(model_repository / "next-word" / "1"), "--format", "text", "--data", corpus,
        "--out", str(out),
    )  # fmt: skip
    assert json.loads(result.stdout)["text_conventions"]["split_contractions"] is True
    config = BundleConfig.load(out)
    assert config.export["retokenized"]["lines_with_changed_ids"] == 0
    classifier = run_cli(
        "retokenize", "--model", str(model_repository / "sentiment" / "1"), "--format", "sst2", "--data",
        str(data_dir / "sst2"), "--out", str(tmp_path / "sentiment" / "2"),
    )  # fmt: skip
    conventions = json.loads(classifier.stdout)["text_conventions"]
    assert conventions["split_punctuation"] is True and conventions["number_token"] is None
    assert BundleConfig.load(tmp_path / "sentiment" / "2").export["retokenized"]["lines_with_changed_ids"] == 0


def test_a_scraped_review_is_answered_as_the_plain_one(client: httpx.Client) -> None:
    """Markup through the service: the bundle's tokenizer reads it away, so the answer is the same."""
    plain = ["the plot was dull", "the cast was great , the story too"]
    scraped = ["<p>The plot was <i>dull</i></p>", "The cast was great,<br /><br />the story too&nbsp;"]
    answers = [
        client.post("/predict", json={"model": "sentiment", "inputs": texts}).json()["outputs"]
        for texts in (plain, scraped)
    ]
    assert [(o["label"], o["score"]) for o in answers[0]] == [(o["label"], o["score"]) for o in answers[1]]


def test_control_tokens_a_text_spells_read_as_an_unknown_word(model_repository: Path) -> None:
    """A text cannot put padding or a sentence start where the tokenizer would not: `<pad>`,
    `<bos>`, `<eos>` typed, escaped or in full-width brackets read as a word the vocabulary lacks."""
    for name, keep_tail in (("next-word", True), ("sentiment", False)):
        encoder = TextEncoder.from_file(model_repository / name / "1" / "tokenizer.json", 64, keep_tail)
        controls = {encoder.tokenizer.token_to_id(t) for t in (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)}
        unknown = encoder.encode(["the qqzxv company said qqzxv"])[0].ids
        for spelled in (
            "the <pad> company said <eos>",
            "the <bos> company said <pad>",
            "the &lt;pad&gt; company said &lt;eos&gt;",
            "the \uff1cpad\uff1e company said \uff1ceos\uff1e",
        ):
            ids = encoder.encode([spelled])[0].ids
            assert not controls & set(ids[1 if keep_tail else 0 :]), (name, spelled)
            # A classifier splits the brackets from the word unless the tokenizer matched the whole
            # token in the raw text; the language model's vocabulary holds the tokens as words.
            if keep_tail or spelled.startswith("the <"):
                assert ids == unknown, (name, spelled)
    # The language model's own marks stay: its leading <bos>, the <eos> <bos> of a sentence end, and
    # the id a continued text starts from; a stray <bos> after it is still a typed one.
    encoder = TextEncoder.from_file(model_repository / "next-word" / "1" / "tokenizer.json", 64, True)
    tokens = [encoder.token(i) for i in encoder.ids("The bank said 5%. The <bos> market")]
    assert tokens == ["<bos>", "the", "bank", "said", "n", "n", "<eos>", "<bos>", "the", "<unk>", "market"]
    bank = encoder.tokenizer.token_to_id("bank")
    assert [encoder.token(i) for i in encoder.ids("<bos> the", start=bank)] == ["bank", "<unk>", "the"]


def test_a_spelled_control_token_is_answered_as_an_unknown_word(client: httpx.Client) -> None:
    def answers(text: str) -> tuple[dict, dict, dict]:
        predict = client.post("/predict", json={"model": "next-word", "inputs": [text]}).json()["outputs"][0]
        suggest = client.post("/suggest", json={"model": "next-word", "text": text + " "}).json()
        intent = client.post("/predict", json={"model": "intent", "inputs": [text]}).json()["outputs"][0]
        return predict, suggest["next"], intent

    assert answers("the <pad> bank <eos>") == answers("the qqzxv bank qqzxv")
