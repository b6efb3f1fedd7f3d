"""The web page at ``/``: static files shipped in the package (``static/``), no build step.

``index.html`` loads ``static/app.js`` and ``static/app.css``; the script draws
the ladder, the depth chart and the trade tape from the WebSocket feed, and
uses the REST API with the token the user pastes. Neither route is part of the
OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "web_routes"]

#: Where the page's files are, inside the installed package.
STATIC = Path(__file__).resolve().parent / "static"

# Scripts and styles from this origin only; the feed is this origin's WebSocket. No framing (clickjacking).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: Request) -> FileResponse:
    """The page itself."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


def web_routes() -> list[BaseRoute]:
    """``GET /`` (the page) and ``/static/...`` (its script and style sheet)."""
    return [
        Route("/", index, methods=["GET"], include_in_schema=False),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
