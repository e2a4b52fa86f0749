"""`GET /playground`: a page to try the models by typing (intent with out-of-scope, sentiment, and
next-word suggestions through `/suggest`), with the latency of each call. Off unless the
`playground` setting is on (`make serve` turns it on); it calls the same API with the same key."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from service.routes.head import answer_head

FILES = Path(__file__).resolve().parent.parent / "playground"
MEDIA_TYPES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
# Only its own files, and calls to this origin only.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def router() -> APIRouter:
    """The page's routes, its files read once."""
    pages = {name: (FILES / name).read_bytes() for name in MEDIA_TYPES}
    routes = APIRouter(include_in_schema=False)

    def serve(name: str) -> Response:
        return Response(pages[name], media_type=MEDIA_TYPES[name], headers=HEADERS)

    @routes.get("/playground")
    async def page() -> Response:
        return serve("index.html")

    @routes.get("/playground/{name}")
    async def asset(name: str) -> Response:
        if name not in pages or name == "index.html":
            raise HTTPException(status_code=404, detail="Not Found")
        return serve(name)

    return answer_head(routes)
