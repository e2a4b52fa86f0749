"""Completion: decoding strategies, and the service's step-model completions over real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from rnnserve_bundle.config import (
    EOS_TOKEN,
    INPUT_IDS,
    LENGTHS,
    LOGITS,
    MODEL_FILE,
    STEP_MODEL_FILE,
    TOKENIZER_FILE,
    BundleConfig,
)
from rnnserve_bundle.encoder import TextEncoder
from rnnserve_bundle.sessions import CPU, create_session
from service.completion import CompletionEngine
from service.decoding import Decoder, nucleus

PREFIXES = ["the market", "shares of the company rose", "analysts said the"]


def test_nucleus_keeps_the_smallest_set_reaching_top_p() -> None:
    probabilities = np.array([0.5, 0.3, 0.15, 0.05])
    assert nucleus(probabilities, 0.7).tolist() == pytest.approx([0.5 / 0.8, 0.3 / 0.8, 0, 0])
    assert nucleus(probabilities, 1.0) is probabilities


def test_beam_search_finds_the_best_sequence_that_greedy_misses() -> None:
    # Step 1: word 1 (0.6) beats word 2 (0.4); but after word 1 every word is unlikely, after 2 one is sure.
    table = {(): [0, 0.6, 0.4, 0], (1,): [0, 0.34, 0.33, 0.33], (2,): [0, 0.01, 0.01, 0.98]}

    def run(decoder: Decoder) -> Decoder:
        while not decoder.done:
            logits = np.log(np.array([table.get(tuple(h.tokens), [0.25] * 4) for h in decoder.live]) + 1e-12)
            decoder.step(logits)
        return decoder

    greedy = run(Decoder("greedy", 2, 1, eos=0, banned=[]))
    beam = run(Decoder("beam", 2, 2, eos=0, banned=[], beam_width=2))
    assert greedy.results()[0].tokens == [1, 1]
    assert beam.results()[0].tokens == [2, 3]
    assert beam.results()[0].logprob == pytest.approx(np.log(0.4 * 0.98))


def test_sampling_is_reproducible_with_a_seed_and_respects_bans() -> None:
    logits = np.zeros((1, 50))

    def draw(seed: int) -> list[list[int]]:
        decoder = Decoder("sample", 5, 3, eos=0, banned=[0, 1, 2], seed=seed)
        while not decoder.done:
            decoder.step(np.repeat(logits, len(decoder.live), axis=0))
        return [h.tokens for h in decoder.results()]

    first = draw(11)
    assert first == draw(11)
    assert first != draw(12)
    assert all(len(tokens) == 5 and min(tokens) > 2 for tokens in first)


@pytest.mark.parametrize("temperature", [1e-300, 1e-40, 1e-6])
def test_sampling_at_a_vanishing_temperature_is_greedy(temperature: float) -> None:
    # Logits of a real scale: divided as they come, tiny temperatures overflowed to NaN (a 500).
    logits = np.random.default_rng(0).normal(0, 8, size=(1, 200)).astype(np.float32)

    def run(decoder: Decoder) -> list[list[int]]:
        while not decoder.done:
            decoder.step(np.repeat(logits, len(decoder.live), axis=0))
        return [h.tokens for h in decoder.results()]

    greedy = run(Decoder("greedy", 3, 1, eos=-1, banned=[0]))[0]
    sampled = run(Decoder("sample", 3, 2, eos=-1, banned=[0], temperature=temperature, seed=5))
    assert sampled == [greedy, greedy]


def greedy_by_rereading(bundle: Path, prefix: str, words: int) -> list[str]:
    """The reference: re-read the whole text with `model.onnx` for every word (no carried state)."""
    config = BundleConfig.load(bundle)
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, 10_000, keep_tail=True)
    session = create_session(bundle / MODEL_FILE, [CPU])
    ids = encoder.encode([prefix])[0].ids
    banned = [encoder.tokenizer.token_to_id(t) for t in ("<pad>", "<bos>", "<unk>")]
    eos = encoder.tokenizer.token_to_id(EOS_TOKEN)
    out: list[str] = []
    for _ in range(words):
        (logits,) = session.run([LOGITS], {INPUT_IDS: np.array([ids]), LENGTHS: np.array([len(ids)])})
        logits = logits[0].astype(np.float64)
        logits[banned] = -np.inf
        best = int(logits.argmax())
        if best == eos:
            break
        out.append(encoder.token(best))
        ids.append(best)
    assert len(ids) <= config.max_sequence_length  # the reference never truncates
    return out


def test_steps_keep_recurrent_state_where_it_was_computed_while_the_batch_is_unchanged(
    model_repository: Path,
) -> None:
    bundle = model_repository / "next-word" / "1"
    config = BundleConfig.load(bundle)
    engine = CompletionEngine(
        create_session(bundle / STEP_MODEL_FILE, [CPU]),
        num_layers=config.architecture.num_layers,
        hidden_size=config.architecture.hidden_size,
        max_batch_size=64,
        max_pending=100,
    )

    async def run(strategy: str, width: int) -> list[list[int]]:
        decoder = lambda: Decoder(strategy, 6, width, eos=-1, banned=[0], beam_width=width, seed=1)  # noqa: E731
        (done,) = await engine.complete([[1, 5, 6, 7]], decoder)
        return [h.tokens for h in done.hypotheses]

    async def scenario() -> None:
        engine.start()
        try:
            (greedy,) = await run("greedy", 1)
            assert len(greedy) == 6
            # Word 1 comes from reading the prefix, words 2-6 from five steps: the first takes the
            # prefix's states from the host, the other four the previous step's, untouched.
            assert (engine.steps_from_host, engine.steps_on_device) == (1, 4)
            samples = await run("sample", 3)
            assert [len(tokens) for tokens in samples] == [6, 6, 6]
            assert (engine.steps_from_host, engine.steps_on_device) == (2, 8)  # sampled rows never move
        finally:
            await engine.stop()

    asyncio.run(scenario())


def written(tokens: list[str]) -> str:
    """The fixture corpus's tokens as a person writes them: "does n't" is "doesn't", "$ n" is "$n"."""
    text = " ".join(tokens)
    for contraction in ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m"):
        text = text.replace(" " + contraction, contraction)
    return text.replace("$ ", "$")


def test_completion_text_is_written_as_a_person_writes_it(client: httpx.Client) -> None:
    output = complete(client, ["the company said it does"], max_words=4)["outputs"][0]
    (completion,) = output["completions"]
    assert completion["tokens"][0] == "n't" and completion["joins"] is True
    assert completion["text"] == written(completion["tokens"]) and completion["text"].startswith("n't ")
    # After a currency sign the number is written onto it.
    money = complete(client, ["the bank reported a profit of $"], max_words=3)["outputs"][0]["completions"][0]
    assert money["tokens"][0] == "n" and money["joins"] is True
    plain = complete(client, ["the bank reported"], max_words=3)["outputs"][0]["completions"][0]
    assert "joins" not in plain and plain["text"] == written(plain["tokens"])


def complete(client: httpx.Client, inputs: list[str], **params) -> dict:
    response = client.post("/predict", json={"model": "next-word", "inputs": inputs, "params": params})
    assert response.status_code == 200, response.text
    return response.json()


def test_greedy_completion_on_the_step_model_equals_rereading_the_prefix(
    client: httpx.Client, model_repository: Path
) -> None:
    answer = complete(client, PREFIXES, max_words=6, top_k=3)
    for prefix, output in zip(PREFIXES, answer["outputs"], strict=True):
        (completion,) = output["completions"]
        expected = greedy_by_rereading(model_repository / "next-word" / "1", prefix, 6)
        assert completion["tokens"] == expected
        assert completion["text"] == written(expected)
        assert completion["finished"] == (len(expected) < 6)
        assert completion["logprob"] < 0
        assert len(output["next"]) == 3
        if expected:
            assert output["next"][0]["token"] == expected[0]  # the first word is the top next word


def test_beam_and_sampling_over_http(client: httpx.Client) -> None:
    beam = complete(client, PREFIXES[:1], max_words=4, strategy="beam", beam_width=4, completions=3)
    beams = beam["outputs"][0]["completions"]
    assert 1 <= len(beams) <= 3
    greedy = complete(client, PREFIXES[:1], max_words=4)["outputs"][0]["completions"][0]
    # Beam search keeps the greedy path among its hypotheses, so its best is at least as likely per word.
    best = max(beams, key=lambda c: c["logprob"] / (len(c["tokens"]) + c["finished"]))
    assert (
        best["logprob"] / (len(best["tokens"]) + best["finished"])
        >= greedy["logprob"] / (len(greedy["tokens"]) + greedy["finished"]) - 1e-6
    )

    params = {"max_words": 5, "strategy": "sample", "completions": 4, "temperature": 1.5, "top_p": 0.95}
    first = complete(client, PREFIXES[:2], seed=3, **params)
    assert first == complete(client, PREFIXES[:2], seed=3, **params)
    assert all(len(o["completions"]) == 4 for o in first["outputs"])


def test_completion_counts_follow_the_strategy(client: httpx.Client) -> None:
    greedy = complete(client, PREFIXES[:1], max_words=3, completions=4)["outputs"][0]["completions"]
    beam = complete(client, PREFIXES[:1], max_words=3, strategy="beam", beam_width=2, completions=5)
    assert len(greedy) == 1  # one greedy path
    assert len(beam["outputs"][0]["completions"]) <= 2  # never more than the beam holds


def test_concurrent_completions_share_steps_and_are_each_answered(client: httpx.Client, server) -> None:
    import concurrent.futures

    singles = {p: complete(client, [p], max_words=5)["outputs"][0]["completions"][0] for p in PREFIXES}
    jobs = [PREFIXES[i % 3] for i in range(24)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(
            pool.map(
                lambda p: httpx.post(
                    f"{server.url}/predict",
                    json={"model": "next-word", "inputs": [p], "params": {"max_words": 5}},
                    timeout=30,
                ),
                jobs,
            )
        )
    for prefix, response in zip(jobs, answers, strict=True):
        assert response.status_code == 200
        assert response.json()["outputs"][0]["completions"][0] == singles[prefix]


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        ("sentiment", {"max_words": 3}, "completion is for next-word models"),
        ("next-word", {"max_words": 0}, "max_words"),
        ("next-word", {"max_words": 3, "strategy": "nucleus"}, "strategy"),
        ("next-word", {"max_words": 3, "strategy": "sample", "top_p": 0}, "top_p"),
    ],
)
def test_bad_completion_params_get_a_clear_4xx(client: httpx.Client, model: str, params: dict, message: str) -> None:
    response = client.post("/predict", json={"model": model, "inputs": ["the market"], "params": params})
    assert 400 <= response.status_code < 500
    assert message in response.json()["error"]["message"]
