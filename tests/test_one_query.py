"""One query, validated once: every rule `/predict` enforces holds on KServe v2 too, over real HTTP,
and the model lifecycle defects found at the seams between protocols, tasks and reloads stay fixed."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import jsonschema_rs
import pytest

from rnnserve_bundle.layout import BundleRef
from service.errors import InvalidInput
from service.metrics import Metrics
from service.query import Query, QueryRules
from service.repository import ModelRepository
from service.schemas import MAX_SEED, PredictParams
from service.settings import Settings
from tests.conftest import Server


def v2(client: httpx.Client, model: str, texts: list, **extra) -> httpx.Response:
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts, **extra.pop("tensor", {})}
    return client.post(f"/v2/models/{model}/infer", json={"inputs": [tensor], **extra})


def raw(client: httpx.Client, path: str, body: str) -> httpx.Response:
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


BAD_TEXTS = [
    ("", "a text must hold"),
    ("   ", "a text must hold"),
    ("a\x00b", "a text must hold"),
    ("\x1f", "a text must hold"),  # a blank to str.isspace, not to ECMAScript's \s (a fuzzer's finding)
    ("\u200b\ufeff \u00ad", "a text must hold"),  # invisible: what the tokenizers drop
]


@pytest.mark.parametrize("model", ["intent", "next-word"])
@pytest.mark.parametrize(("text", "message"), BAD_TEXTS)
def test_bad_texts_get_the_same_422_on_both_protocols(client: httpx.Client, model: str, text: str, message: str):
    on_predict = client.post("/predict", json={"model": model, "inputs": ["fine", text]})
    on_v2 = v2(client, model, ["fine", text])
    assert on_predict.status_code == on_v2.status_code == 422, (on_predict.text, on_v2.text)
    assert f"inputs[1]: {message}" in on_predict.json()["error"]["message"]
    assert f"inputs[1]: {message}" in on_v2.json()["error"]


def test_the_published_pattern_is_the_rule_the_server_applies(client: httpx.Client) -> None:
    """Every character of the Basic Multilingual Plane, alone and beside a letter: the OpenAPI
    pattern, read as JSON Schema reads it (ECMAScript regular expressions, as clients and fuzzers
    do), accepts a text exactly when the query rules do. A fuzzer found them apart on U+001F, a
    blank to Python's `\\s` and not to ECMAScript's."""
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    items = schema["properties"]["inputs"]["items"]
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": items["pattern"]})
    rules = QueryRules(Settings())
    for point in range(1, 0x10000):
        if 0xD800 <= point < 0xE000:
            continue  # lone surrogates: no JSON text carries one as a character (their own test below)
        for text in (chr(point), f"{chr(point)}a"):
            try:
                rules.check_text(text, "text")
                accepted = True
            except InvalidInput:
                accepted = False
            assert validator.is_valid(text) == accepted, hex(point)


@pytest.mark.parametrize("path", ["/predict", "/v2/models/intent/infer"])
def test_a_lone_surrogate_is_a_422_not_a_500(client: httpx.Client, path: str) -> None:
    body = (
        '{"model": "intent", "inputs": ["ok", "\\ud800"]}'
        if path == "/predict"
        else '{"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["ok", "\\ud800"]}]}'
    )
    response = raw(client, path, body)
    assert response.status_code == 422, response.text
    # /predict's JSON parser accepts the escape and the query rules name it; v2's parser refuses it.
    assert "surrogate" in response.text or "hex escape" in response.text


def test_v2_top_k_is_validated_like_predict(client: httpx.Client) -> None:
    for top_k, fragment in [(1001, "less than or equal to 1000"), (101, "at most 100"), (0, "greater than"), ("x", "")]:
        response = v2(client, "next-word", ["the company"], parameters={"top_k": top_k})
        assert response.status_code == 422, response.text
        assert "parameters.top_k" in response.json()["error"] and fragment in response.json()["error"]
        on_predict = client.post("/predict", json={"model": "next-word", "inputs": ["x"], "params": {"top_k": top_k}})
        assert on_predict.status_code == 422
    assert v2(client, "next-word", ["the company"], parameters={"top_k": 3}).status_code == 200
    # Keys of the protocol's own are ignored; anything else is named.
    assert v2(client, "intent", ["play jazz"], parameters={"binary_data_output": False}).status_code == 200
    response = v2(client, "intent", ["play jazz"], parameters={"topk": 3})
    assert response.status_code == 422 and "unknown topk" in response.json()["error"]


def test_v2_input_must_be_named_text(client: httpx.Client) -> None:
    response = v2(client, "intent", ["play jazz"], tensor={"name": "nope"})
    assert response.status_code == 422 and "'nope'" in response.json()["error"]


def test_v2_unknown_model_is_404_before_the_body_is_read(client: httpx.Client) -> None:
    response = raw(client, "/v2/models/absent/infer", "not json")
    assert response.status_code == 404
    assert raw(client, "/v2/models/intent/infer", "not json").status_code == 422


def test_seed_bound_is_exact_in_json(client: httpx.Client) -> None:
    body = {"model": "next-word", "inputs": ["the"], "params": {"max_words": 2, "strategy": "sample"}}
    body["params"]["seed"] = MAX_SEED
    assert client.post("/predict", json=body).status_code == 200
    # What a fuzzer sent once: a JSON float just above 2^63 - 1, then inside the stated bound.
    text = '{"model": "next-word", "inputs": ["the"], "params": {"seed": 9223372036854776000}}'
    response = raw(client, "/predict", text)
    assert response.status_code == 422 and "seed" in response.text


def test_classifier_with_more_labels_than_max_top_k_serves_v2(make_server, model_repository: Path) -> None:
    # The intent fixture has 3 labels; a max_top_k of 2 is the same seam as 151 labels against 100.
    server: Server = make_server(model_repository, RNNSERVE_MAX_TOP_K="2")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = v2(client, "intent", ["play some jazz", "will it rain in oslo"])
        assert response.status_code == 200, response.text
        probabilities = next(t for t in response.json()["outputs"] if t["name"] == "probabilities")
        assert probabilities["shape"] == [2, 3]
        too_many = client.post("/predict", json={"model": "intent", "inputs": ["x"], "params": {"top_k": 3}})
        assert too_many.status_code == 422 and "at most 2" in too_many.text


def test_request_larger_than_the_queue_is_422_not_503(make_server, model_repository: Path) -> None:
    server: Server = make_server(model_repository, RNNSERVE_MAX_QUEUE_SIZE="4")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        texts = ["play jazz"] * 5
        on_predict = client.post("/predict", json={"model": "intent", "inputs": texts})
        on_v2 = v2(client, "intent", texts)
        for response in (on_predict, on_v2):
            assert response.status_code == 422, response.text
            assert "retry-after" not in response.headers
            assert "capacity of 4" in response.text
        assert client.post("/predict", json={"model": "intent", "inputs": texts[:4]}).status_code == 200


def test_the_folder_is_the_name_and_version(make_server, model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(model_repository / "intent" / "1", repo / "intent" / "3")  # promoted as version 3
    shutil.copytree(model_repository / "intent" / "1", repo / "chat" / "1")  # another name
    server: Server = make_server(repo)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok", health
        served = {(m["name"], m["version"], m["trained_as"]) for m in health["models"]}
        assert served == {("intent", "3", "intent/1"), ("chat", "1", "intent/1")}
        assert client.post("/predict", json={"model": "intent", "inputs": ["play jazz"]}).json()["version"] == "3"
        assert v2(client, "chat", ["play jazz"]).json()["model_name"] == "chat"


def _series(text: str, version: str) -> list[str]:
    return [line for line in text.splitlines() if 'model="intent"' in line and f'version="{version}"' in line]


def test_metrics_are_per_version_and_leave_with_it(make_server, model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for version in ("1", "2"):
        shutil.copytree(model_repository / "intent" / "1", repo / "intent" / version)
    server: Server = make_server(repo)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for version in ("1", "2"):
            body = {"model": "intent", "version": version, "inputs": ["play jazz"]}
            assert client.post("/predict", json=body).status_code == 200
        text = client.get("/metrics").text
        for version in ("1", "2"):
            assert f'rnnserve_queue_depth{{model="intent",version="{version}"}}' in text
            assert f'rnnserve_inference_requests_total{{model="intent",status="ok",version="{version}"}} 1.0' in text
        shutil.rmtree(repo / "intent" / "2")
        assert client.post("/reload").json()["unloaded"] == ["intent/2"]
        for _ in range(50):  # the retired version closes in the background
            text = client.get("/metrics").text
            if not _series(text, "2"):
                break
            asyncio.run(asyncio.sleep(0.1))
        assert _series(text, "2") == []
        assert _series(text, "1")


def test_a_leased_model_answers_through_a_reload_that_retires_it(model_repository: Path, tmp_path: Path) -> None:
    """A request that found its model before a reload replaced it is answered by that model, which
    closes only afterwards (before: 'the batcher is not started', a lost batch or a hang)."""
    repo = tmp_path / "repo"
    shutil.copytree(model_repository / "intent" / "1", repo / "intent" / "1")
    settings = Settings(model_repository=repo, request_timeout_s=0)
    rules = QueryRules(settings)

    async def scenario() -> None:
        repository = ModelRepository(repo, settings, Metrics())
        repository.load_all()
        repository.start()
        query = Query(["play some jazz"], "intent", None, PredictParams())
        with repository.lease("intent") as (old,):
            (repo / "intent" / "1" / "config.json").touch()  # a changed bundle: reloaded and replaced
            changes = await repository.reload()
            assert changes["loaded"] == ["intent/1"] and repository.get("intent") is not old
            await asyncio.sleep(0.05)  # the retirement is under way, waiting for this lease
            assert old.batcher.depth == 0 and old.leases == 1
            answers = await asyncio.wait_for(old.predict(query, rules), 10)
            assert answers[0]["label"]
        await asyncio.wait_for(repository.close(), 10)
        assert old.leases == 0

    asyncio.run(scenario())


def test_folder_names_not_config_names_route(model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(model_repository / "sentiment" / "1", repo / "reviews" / "7")
    settings = Settings(model_repository=repo)

    async def scenario() -> None:
        repository = ModelRepository(repo, settings, Metrics())
        repository.load_all()
        assert [(m.name, m.version) for m in repository.all()] == [("reviews", "7")]
        assert repository.snapshot.failures == {}
        await repository.close()

    asyncio.run(scenario())
    assert BundleRef("reviews", "7", repo / "reviews" / "7").key == "reviews/7"
