"""The OpenAPI document states the limits this server enforces, as configured (`service.query`),
and declares the KServe v2 infer body, which the route reads itself (clients send no Content-Type)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.query import document_limits
from service.routes.kserve import InferRequest
from service.settings import Settings


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            infer = InferRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(infer.pop("$defs", {}))
            schemas["InferRequest"] = infer
            document_limits(document, settings)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
