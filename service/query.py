"""One validated query, whichever protocol brought it.

`POST /predict` and KServe v2 `infer` both translate their wire format into `Query` objects (texts,
model, version, task parameters) and check them here, against the settings and the model that will
answer: every rule holds on both protocols with the same message. The OpenAPI document states the
same limits (`document_limits`), so the schema and the server agree.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rnnserve_bundle.encoder import TokenLimit
from rnnserve_bundle.spelling import SEARCHES_PER_REQUEST
from service.continuation import MAX_TOKEN_CHARS
from service.errors import InvalidInput
from service.schemas import PredictParams, PredictRequest
from service.settings import Settings

if TYPE_CHECKING:
    from rnnserve_bundle.encoder import Encoded
    from service.served_model import ServedModel

# A text holds at least one visible character and no NUL. Not visible: blanks (`str.isspace`),
# control characters and format characters (zero-width spaces and joiners, the byte-order mark,
# the soft hyphen: what the tokenizers drop), so that such a text gets the same 422 as an empty one
# rather than an answer about nothing. The set is the Basic Multilingual Plane's, spelled out as
# ranges: the pattern is read in the JSON Schema (ECMAScript) dialect too, where `\s` means another
# set and a character class cannot hold a code point past U+FFFF. Stated as a pattern in the
# OpenAPI document; checked here with `str` methods (a backtracking regex is quadratic on long texts).
INVISIBLE = frozenset(
    chr(c) for c in range(0x10000) if chr(c).isspace() or unicodedata.category(chr(c)) in ("Cc", "Cf")
)


def _ranges(chars: frozenset[str]) -> str:
    points, spans = sorted(map(ord, chars)), []
    for point in points:
        if spans and point == spans[-1][1] + 1:
            spans[-1][1] = point
        else:
            spans.append([point, point])
    return "".join(rf"\u{a:04x}" if a == b else rf"\u{a:04x}-\u{b:04x}" for a, b in spans)


TEXT_PATTERN = rf"^[^\x00]*[^{_ranges(INVISIBLE)}][^\x00]*$"
TEXT_RULE = "a text must hold a visible character and no NUL characters"
TYPED_PATTERN = r"^[^\x00]*$"  # `/suggest`: typed text may be blank, never NUL
STATE_PATTERN = r"^[A-Za-z0-9_-]+$"  # a continuation token is base64url


def _visible(text: str) -> bool:
    # Nearly every text starts with a visible character: one set lookup, not a generator.
    return bool(text) and (text[0] not in INVISIBLE or any(char not in INVISIBLE for char in text))


@dataclass(frozen=True, slots=True)
class Query:
    """Texts for one model, with that model's task parameters."""

    texts: list[str]
    model: str
    version: str | None
    params: PredictParams


def predict_queries(request: PredictRequest) -> list[Query]:
    """`POST /predict`'s body as one query per model asked, whichever way it named them."""
    if request.models is not None:
        return [Query(request.inputs, q.model, q.version, q.params or request.params) for q in request.models]
    assert request.model is not None
    return [Query(request.inputs, request.model, request.version, request.params)]


def params_from(values: dict[str, Any], where: str) -> PredictParams:
    """Task parameters from a protocol's free-form map, with the `/predict` schema's rules."""
    try:
        return PredictParams.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}.{field}: {first['msg']}") from None


class QueryRules:
    """The limits a query must meet; `check_texts` before a model is involved, `encode` with it."""

    def __init__(self, settings: Settings) -> None:
        self._max_inputs = settings.max_inputs_per_request
        self._max_chars = settings.max_chars_per_input
        self._max_top_k = settings.max_top_k
        self._max_tokens = settings.max_tokens_per_request

    def check_texts(self, texts: list[str], where: str = "inputs") -> None:
        if not texts:
            raise InvalidInput(f"{where}: at least one text is required")
        if len(texts) > self._max_inputs:
            raise InvalidInput(f"{where}: {len(texts)} texts exceed the limit of {self._max_inputs}")
        for index, text in enumerate(texts):
            self.check_text(text, f"{where}[{index}]")

    def check_text(self, text: str, where: str, blank_ok: bool = False) -> None:
        """One text's rules; `blank_ok` where an empty or blank text means something (`/suggest`)."""
        if len(text) > self._max_chars:
            raise InvalidInput(f"{where}: {len(text)} characters exceed the limit of {self._max_chars}")
        # _visible() stops at the first visible character and isascii() reads a flag: the common
        # text costs a few hundred nanoseconds here.
        if "\x00" in text or (not blank_ok and not _visible(text)):
            raise InvalidInput(f"{where}: {TEXT_RULE}")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate from a JSON `\ud800` escape
                raise InvalidInput(f"{where}: not valid Unicode (a lone surrogate)") from None

    def check_params(self, params: PredictParams, where: str = "params") -> None:
        self.check_top_k(params.top_k, f"{where}.top_k")

    def check_top_k(self, top_k: int | None, where: str = "top_k") -> None:
        if top_k is not None and top_k > self._max_top_k:
            raise InvalidInput(f"{where}: at most {self._max_top_k}")

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def check(self, query: Query, params_at: str = "params") -> None:
        """Everything that does not need the model; `params_at` names the parameters as the
        protocol's body does."""
        self.check_texts(query.texts)
        self.check_params(query.params, params_at)

    def encode(self, query: Query, model: ServedModel) -> list[Encoded]:
        """The query's token ids, once the model's task accepts its parameters and the request fits
        the model's limits."""
        model.head.check(query.params)
        model.check_fits(len(query.texts), query.params)
        try:  # every window a classifier reads counts
            return model.encoder.encode(query.texts, self._max_tokens, SEARCHES_PER_REQUEST)
        except TokenLimit as error:
            raise InvalidInput(f"inputs: {error} per request") from None


def document_limits(document: dict, settings: Settings) -> None:
    """State the configured limits in the OpenAPI document of `/predict` and `/suggest`."""
    schemas = document.get("components", {}).get("schemas", {})
    inputs = schemas.get("PredictRequest", {}).get("properties", {}).get("inputs", {})
    if inputs:
        inputs["maxItems"] = settings.max_inputs_per_request
        items = inputs.setdefault("items", {})
        items["maxLength"] = settings.max_chars_per_input
        items["pattern"] = TEXT_PATTERN
        items["description"] = TEXT_RULE
    top_k = schemas.get("PredictParams", {}).get("properties", {}).get("top_k", {})
    for option in top_k.get("anyOf", [top_k]):
        if option.get("type") == "integer":
            option["maximum"] = settings.max_top_k
    suggest = schemas.get("SuggestRequest", {}).get("properties", {})
    if suggest:
        suggest["text"].update(maxLength=settings.max_chars_per_input, pattern=TYPED_PATTERN)
        suggest["top_k"]["maximum"] = settings.max_top_k
        for option in suggest["state"].get("anyOf", []):
            if option.get("type") == "string":
                option.update(pattern=STATE_PATTERN, maxLength=MAX_TOKEN_CHARS)
