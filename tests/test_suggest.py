"""`POST /suggest`: next words as a text is typed, continuing from a signed state token."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from rnnserve_client import Client
from tests.conftest import Server

SENTENCE = "the company said it expects the market to rise "


def suggest(url: str, text: str, state: str | None = None, **extra: object) -> httpx.Response:
    body = {"model": "next-word", "text": text, **({"state": state} if state else {}), **extra}
    return httpx.post(f"{url}/suggest", json=body, timeout=30)


def scores(answer: dict) -> dict[str, float]:
    return {w["token"]: w["score"] for w in answer["next"]}


def test_whole_text_matches_predict(client: httpx.Client, server: Server) -> None:
    answer = suggest(server.url, SENTENCE, top_k=5).json()
    assert answer["pending"] == "" and answer["model"] == "next-word"
    predicted = client.post("/predict", json={"model": "next-word", "inputs": [SENTENCE]}).json()
    expected = {w["token"]: w["score"] for w in predicted["outputs"][0]["next"]}
    assert list(scores(answer)) == list(expected)
    np.testing.assert_allclose(list(scores(answer).values()), list(expected.values()), atol=1e-5)


def test_keystrokes_cost_the_same_and_end_where_the_whole_text_does(server: Server) -> None:
    """Typed one character at a time; each request reads at most the word a space ended."""
    with Client(server.url) as rnnserve:
        typing = rnnserve.typing("next-word", top_k=5)
        reads = []
        for end in range(1, len(SENTENCE) + 1):
            result = typing.update(SENTENCE[:end])
            reads.append(result.read)
            typed = SENTENCE[:end].split(" ")[-1]
            assert result.pending == typed
            assert all(w.label.startswith(typed) for w in result.next)
    assert max(reads[1:]) <= 3 and sum(reads) <= 3 * len(SENTENCE.split()) + 1
    whole = scores(suggest(server.url, SENTENCE).json())
    assert [w.label for w in result.next] == list(whole)
    # The states travel as float16: the answers agree to well under a percent of probability.
    np.testing.assert_allclose([w.score for w in result.next], list(whole.values()), atol=2e-3)


def after(client: httpx.Client, text: str) -> dict[str, dict]:
    """Every next word after a whole text, as `POST /predict` answers it."""
    answer = client.post("/predict", json={"model": "next-word", "inputs": [text], "params": {"top_k": 100}}).json()
    return {w["token"]: w for w in answer["outputs"][0]["next"]}


def test_a_half_typed_contraction_is_offered_as_the_whole_word(client: httpx.Client, server: Server) -> None:
    """The corpus writes "does n't": typed "doesn" is on its way to two of the model's words,
    offered as the one word a person types, scored as the two."""
    expected = after(client, "the company")["does"]["score"] * after(client, "the company does")["n't"]["score"]
    for typed in ("the company doesn", "the company doesn'", "the company doesn't", "the company doesnt"):
        answer = suggest(server.url, typed).json()
        assert scores(answer)["doesn't"] == pytest.approx(expected, rel=1e-3), typed
        assert all(w["score"] > 0 for w in answer["next"])
    # "n't" joins a few verbs only: "then" is no word of this corpus, and "the" + "n" no contraction
    # in the making.
    assert suggest(server.url, "the company said then").json()["next"] == []


def test_a_number_being_typed_is_the_number_token(client: httpx.Client, server: Server) -> None:
    """ "5" is read as the corpus's number token: its completion is that token, not the words that
    start with the token's letter ("new", "n't"); after a currency sign, the sign and the number."""
    (number,) = suggest(server.url, "a profit of 5").json()["next"]
    assert number["token"] == "n" and number["placeholder"] == "number"
    expected = after(client, "a profit of")["$"]["score"] * after(client, "a profit of $")["n"]["score"]
    for typed in ("a profit of $5", "a profit of $50"):
        (amount,) = suggest(server.url, typed).json()["next"]
        assert amount["token"] == "$n" and amount["placeholder"] == "number"
        assert amount["score"] == pytest.approx(expected, rel=1e-3)
    # A sign alone is whole: what follows it is still to come.
    assert suggest(server.url, "a profit of $").json()["next"][0]["token"] == "$n"


def test_words_written_onto_the_last_one_say_so(client: httpx.Client, server: Server) -> None:
    for text in ("it does ", "a profit of $ "):
        answer = suggest(server.url, text).json()
        predicted = after(client, text.strip())
        assert answer["next"] and all(w.get("joins") == predicted[w["token"]].get("joins") for w in answer["next"])
    first = suggest(server.url, "it does ").json()["next"][0]
    assert (first["token"], first["joins"]) == ("n't", True)
    assert first["score"] == pytest.approx(after(client, "it does")["n't"]["score"], abs=1e-5)
    assert all(w.get("joins") for w in suggest(server.url, "a profit of $ ").json()["next"])
    assert not any(w.get("joins") for w in suggest(server.url, "the company ").json()["next"])


def test_a_word_typed_with_capitals_is_completed_in_its_case(server: Server) -> None:
    lower = scores(suggest(server.url, "the compa").json())
    assert "company" in lower
    assert scores(suggest(server.url, "the Compa").json()) == {w.capitalize(): p for w, p in lower.items()}
    assert scores(suggest(server.url, "the COMPA").json()) == {w.upper(): p for w, p in lower.items()}
    assert "Doesn't" in scores(suggest(server.url, "the company Doesn").json())


def test_a_word_of_too_many_or_unknown_pieces_gets_no_suggestion(server: Server) -> None:
    # "5%%%%" is five number tokens (the corpus writes "5%" as two): more whole pieces than a word has.
    for typed in ("5%5%5%5%", "5%%%%"):
        answer = suggest(server.url, f"it rose {typed}").json()
        assert answer["next"] == [] and answer["pending"] == typed
    # A piece the model does not know is not offered back as typed, nor is a typed special token.
    for typed in ("xyzzy's", "<unk>'s", "$<unk>", "<eos>n't"):
        assert suggest(server.url, f"the company said {typed}").json()["next"] == [], typed


def test_refuses_tampered_or_foreign_states(server: Server) -> None:
    state = suggest(server.url, "the company ").json()["state"]
    middle = len(state) // 2
    flipped = state[:middle] + ("A" if state[middle] != "A" else "B") + state[middle + 1 :]
    for bad in (flipped, state[:-4], state + "AAAA", "not a token", "é" * 10, "A" * 70_000):
        response = suggest(server.url, "said", bad)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["type"] == "invalid_state"
    assert suggest(server.url, "said", state).status_code == 200  # the genuine one still works


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "sentiment", "text": "good"}, 422, "need a next-word model"),
        ({"model": "absent", "text": "good"}, 404, "absent"),
        ({"model": "next-word", "text": "a\x00b"}, 422, "NUL"),
        ({"model": "next-word", "text": "a", "top_k": 101}, 422, "top_k: at most 100"),
        ({"model": "next-word", "text": "a", "top_k": 0}, 422, "top_k"),
        ({"model": "next-word"}, 422, "text"),
        ({"model": "next-word", "text": "a", "state": 5}, 422, "state"),
        ({"model": "next-word", "text": "a", "extra": 1}, 422, "extra"),
    ],
)
def test_bad_requests_get_4xx(server: Server, body: dict, status: int, message: str) -> None:
    response = httpx.post(f"{server.url}/suggest", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


def test_empty_text_suggests_how_texts_start(server: Server) -> None:
    answer = suggest(server.url, "").json()
    assert answer["next"] and answer["pending"] == "" and answer["read"] == 1  # <bos>


def test_any_replica_with_the_key_continues_and_other_versions_refuse(
    model_repository: Path, tmp_path: Path, make_server
) -> None:
    repository = tmp_path / "models"
    for version in ("1", "2"):
        shutil.copytree(model_repository / "next-word" / "1", repository / "next-word" / version)
    replica_a = make_server(repository, RNNSERVE_CONTINUATION_SECRETS="k-new,k-old")
    replica_b = make_server(repository, RNNSERVE_CONTINUATION_SECRETS="k-new")
    other_key = make_server(repository, RNNSERVE_CONTINUATION_SECRETS="another")
    first = suggest(replica_a.url, "the company said ").json()
    assert first["version"] == "2"
    # No sticky sessions: replica B continues A's state, as A itself would.
    on_b = suggest(replica_b.url, "it ", first["state"])
    on_a = suggest(replica_a.url, "it ", first["state"])
    assert on_b.status_code == 200 and scores(on_b.json()) == scores(on_a.json())
    # A state made with another key is refused; the client helper then resends the whole text.
    refused = suggest(other_key.url, "it ", first["state"])
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "invalid_state"
    # A state of version 2 does not continue version 1, and says so.
    stale = suggest(replica_a.url, "it ", first["state"], version="1")
    assert stale.status_code == 409 and "next-word/2" in stale.json()["error"]["message"]
    with Client(replica_a.url) as rnnserve:
        typing = rnnserve.typing("next-word", version="2")
        typing.update("the company said ")
        typing._state = first["state"].replace(first["state"][5], "B" if first["state"][5] != "B" else "C", 1)
        recovered = typing.update("the company said it ")
        assert recovered.read > 2  # the whole text was read again
        assert scores({"next": [{"token": w.label, "score": w.score} for w in recovered.next]}) == pytest.approx(
            scores(on_a.json()), abs=2e-3
        )
