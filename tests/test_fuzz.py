"""Property-based fuzzing of the service against its own OpenAPI schema (schemathesis): no 5xx, and
every response matches the schema, including the declared error responses.

`make test` runs a fixed set of examples (derandomized: the same cases on every run, so the suite
cannot fail by chance). `make fuzz` is the long random run (RNNSERVE_FUZZ_RANDOM=1, more examples);
what it finds becomes a regular test (its first finding, a seed just above the stated bound
once written as a JSON float, is `test_one_query.py::test_seed_bound_is_exact_in_json`).
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import Server

RANDOM = os.environ.get("RNNSERVE_FUZZ_RANDOM") == "1"
EXAMPLES = int(os.environ.get("RNNSERVE_FUZZ_EXAMPLES", "40"))


def test_api_conforms_and_never_fails(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert paths >= {"/predict", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer", "/health"}
    infer = next(op for op in operations if op.path == "/v2/models/{name}/infer")
    assert infer.body, "the v2 infer body must be declared so that it is fuzzed"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=not RANDOM,
            print_blob=True,
        )
        def check(case) -> None:
            case.call_and_validate()

        check()
