"""The OpenAPI document states the limits this server enforces, as configured."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.settings import Settings


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = document.get("components", {}).get("schemas", {})
            inputs = schemas.get("PredictRequest", {}).get("properties", {}).get("inputs", {})
            if inputs:
                inputs["maxItems"] = settings.max_inputs_per_request
                inputs.setdefault("items", {})["maxLength"] = settings.max_chars_per_input
            top_k = schemas.get("PredictParams", {}).get("properties", {}).get("top_k", {})
            for option in top_k.get("anyOf", [top_k]):
                if option.get("type") == "integer":
                    option["maximum"] = settings.max_top_k
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
