"""`POST /suggest`: next words as a text is typed, one keystroke at a time.

Each answer carries a `state` token (`service.continuation`); the next request sends it with only
the text typed since, and the model resumes where it stopped: a keystroke's cost does not grow with
the document. Any replica holding the same model version and key can continue any client's text.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from service.routes import dependencies
from service.routes.predict import serialise
from service.schemas import ERROR_RESPONSES, SuggestRequest, SuggestResponse

router = APIRouter()


@router.post("/suggest", response_model=SuggestResponse, responses=ERROR_RESPONSES)
async def suggest(
    request: SuggestRequest, serving: Annotated[dependencies.Serving, Depends(dependencies.serving)]
) -> Response:
    rules = serving.rules
    with serving.repository.lease(request.model, request.version) as (model,):
        rules.check_text(request.text, "text", blank_ok=True)  # nothing typed yet: the first words
        rules.check_top_k(request.top_k)
        output, state = await model.suggest(
            request.text, request.state, request.top_k, serving.continuations, rules.max_tokens
        )
    return serialise({"model": model.name, "version": model.version, **output, "state": state})
