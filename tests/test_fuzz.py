"""Property-based fuzzing of the service against its own OpenAPI schema (schemathesis):
no 5xx, and every response matches the schema, including the declared error responses."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import Server


@pytest.fixture()
def api_schema(server: Server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_fails(case) -> None:
    case.call_and_validate()
