"""Typing slips: a word the vocabulary lacks is read as its most frequent word one edit away, by
the classifiers' encoder (training's evaluation and the service) and in a next-word prefix."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rnnserve_bundle.config import Task
from rnnserve_bundle.encoder import TextEncoder, TokenLimit
from rnnserve_bundle.spelling import Speller
from tests.conftest import run_cli
from training.tokenizer import build_tokenizer

CORPUS = ["the weather in paris", "the weather is cold", "play some jazz", "book a table"] * 3 + [
    "whether or not",
    "a transfer to my account",
    "heather said",
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    tokenizer = build_tokenizer(CORPUS, Task.INTENT, vocab_size=1000, min_frequency=1)
    return TextEncoder(tokenizer, 48, keep_tail=False, spelling=True)


def words(encoder: TextEncoder, text: str) -> list[str]:
    return [encoder.token(i) for i in encoder.encode([text])[0].ids]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("waether", "weather"),  # replaced; `whether` and `heather` are one edit away too, but rarer
        ("weathr", "weather"),  # dropped
        ("weatther", "weather"),  # doubled
        ("wetaher", "weather"),  # swapped
        ("tarnsfer", "transfer"),
        ("Acount", "account"),  # in the case the tokenizer folds
        ("tabel", "table"),
        ("weeeather", "weather"),  # a letter held for emphasis: the run shortened to two
        ("jaaaazz", "jazz"),  # ... or to one
        ("plaaaaay", "play"),
    ],
)
def test_one_slip_reads_as_the_word(encoder: TextEncoder, typed: str, meant: str) -> None:
    assert words(encoder, f"the {typed} now") == ["the", meant, "<unk>"]


@pytest.mark.parametrize(
    "typed",
    [
        "jaz",  # shorter than four letters: too close to other words to guess
        "wxyzzq",  # no word one edit away
        "transfr3",  # not all letters
    ],
)
def test_what_is_not_corrected(encoder: TextEncoder, typed: str) -> None:
    assert "<unk>" in words(encoder, typed)


def test_the_more_frequent_of_two_words_one_edit_away() -> None:
    tokenizer = build_tokenizer(["whether"] * 3 + ["weather"], Task.INTENT, vocab_size=100, min_frequency=1)
    speller = Speller(tokenizer)
    assert tokenizer.id_to_token(speller.correct("wether") or 0) == "whether"
    assert speller.correct("weather") is None  # a vocabulary word is left alone
    assert speller.correct("wether") == speller.correct("wether")  # remembered, the same answer


def test_without_spelling_words_stay_unknown(encoder: TextEncoder) -> None:
    plain = TextEncoder(encoder.tokenizer, 48, keep_tail=False)
    assert [plain.token(i) for i in plain.encode(["the waether"])[0].ids] == ["the", "<unk>"]


def test_the_service_reads_slips_and_can_be_told_not_to(
    client: httpx.Client, make_server, model_repository: Path
) -> None:
    def intent(http: httpx.Client, text: str) -> dict:
        return http.post("/predict", json={"model": "intent", "inputs": [text]}).json()["outputs"][0]

    slipped, meant = "will it rian in paris tomorow", "will it rain in paris tomorrow"
    assert intent(client, slipped) == intent(client, meant)

    # A next-word prefix too, on both routes.
    def next_words(http: httpx.Client, text: str) -> tuple[dict, list]:
        predict = http.post("/predict", json={"model": "next-word", "inputs": [text]}).json()["outputs"][0]
        suggest = http.post("/suggest", json={"model": "next-word", "text": text + " "}).json()["next"]
        return predict, suggest

    prefix, meant_prefix = "the compnay reported", "the company reported"
    assert next_words(client, prefix) == next_words(client, meant_prefix)
    as_typed = make_server(model_repository, RNNSERVE_SPELLING="as-typed")
    with httpx.Client(base_url=as_typed.url, timeout=30) as http:
        assert intent(http, slipped) != intent(http, meant)
        assert intent(http, slipped) == intent(http, "will it qqzx in paris qqzxvw")
        assert next_words(http, prefix) != next_words(http, meant_prefix)


def test_evaluate_reads_as_the_service_does_or_as_typed(model_repository: Path, tmp_path: Path) -> None:
    rows = {
        "slipped": ["will it rian in paris tomorow,weather", "plya some jazz,music", "book a tabel in rome,booking"],
        "meant": ["will it rain in paris tomorrow,weather", "play some jazz,music", "book a table in rome,booking"],
    }
    metrics = {}
    for name, lines in rows.items():
        data = tmp_path / f"{name}.csv"
        data.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
        common = ("evaluate", "--model", str(model_repository / "intent" / "1"), "--format", "csv", "--data", str(data))
        metrics[name] = json.loads(run_cli(*common).stdout)
        metrics[f"{name} as typed"] = json.loads(run_cli(*common, "--spelling", "as-typed").stdout)
    assert metrics["slipped"] == metrics["meant"] == metrics["meant as typed"]
    assert "accuracy" in metrics["slipped as typed"]


def test_a_request_looks_up_a_bounded_number_of_new_words(encoder: TextEncoder) -> None:
    speller = Speller(encoder.tokenizer)
    weather = encoder.tokenizer.token_to_id("weather")
    table = encoder.tokenizer.token_to_id("table")
    # One lookup allowed: the first new word is corrected, the second stays unknown...
    assert speller.correct_many(["waether", "tabel"], searches=1) == [weather, None]
    # ... and a remembered word costs no lookup.
    assert speller.correct_many(["waether", "tabel"], searches=1) == [weather, table]
    assert speller.correct_many(["waether", "tabel", "weathr"], searches=0) == [weather, table, None]


def test_the_token_limit_is_found_before_any_word_is_looked_up(encoder: TextEncoder) -> None:
    spelled = TextEncoder(encoder.tokenizer, 48, keep_tail=False, windows=True, spelling=True)
    with pytest.raises(TokenLimit) as refused:
        spelled.encode(["the waether " * 30], max_tokens=50, max_searches=0)
    assert (refused.value.tokens, refused.value.limit) == (60, 50)
    # Within the limit, with no lookups allowed, a word not seen before stays unknown.
    assert [spelled.token(i) for i in spelled.encode(["the waether"], 50, max_searches=0)[0].ids] == ["the", "<unk>"]
    assert words(spelled, "the waether") == ["the", "weather"]


def test_a_next_word_prefix_is_read_corrected_whole_or_continued(model_repository: Path) -> None:
    tokenizer = model_repository / "next-word" / "1" / "tokenizer.json"
    encoder = TextEncoder.from_file(tokenizer, 64, keep_tail=True, spelling=True)
    plain = TextEncoder.from_file(tokenizer, 64, keep_tail=True)
    assert encoder.ids("the compnay repoted") == plain.ids("the company reported")
    bank = encoder.tokenizer.token_to_id("bank")
    assert encoder.ids("repoted a mergr", start=bank) == plain.ids("reported a merger", start=bank)
    assert encoder.encode(["the compnay repoted"])[0] == plain.encode(["the company reported"])[0]
