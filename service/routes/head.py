"""HEAD beside every GET route (RFC 9110 requires it of general-purpose servers): uptime checkers
and load balancers probe `/health` with it, and FastAPI's routes answer only the methods they name.

Each twin runs the GET route's endpoint with the same dependencies (the router's, the API key
included), so its status and headers are the GET's; uvicorn sends no body for HEAD. The twins stay out of the OpenAPI
schema, which would otherwise list every operation twice under one operation id.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute


def answer_head(router: APIRouter) -> APIRouter:
    """Add a HEAD twin to each of the router's GET routes; call it once, after the last route."""
    for route in list(router.routes):
        if isinstance(route, APIRoute) and "GET" in route.methods and "HEAD" not in route.methods:
            router.add_api_route(
                route.path.removeprefix(router.prefix),  # add_api_route puts the prefix back
                route.endpoint,
                methods=["HEAD"],
                dependencies=route.dependencies,
                response_class=route.response_class,
                name=f"{route.name}_head",
                include_in_schema=False,
            )
    return router
