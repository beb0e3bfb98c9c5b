"""How a refused request is answered: the one mapping of the error tree to HTTP, in the format
the request's ``Accept`` asks for (negotiation.error_format).

A browser gets a page (a missing entity, an unknown path); an API client gets
``{"detail": ...}`` as JSON, or as YAML when it asks for YAML by name; Backstage, which sends
``*/*``, gets JSON, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import yaml
from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import RequestRefused
from .negotiation import error_format, prefers_html
from .pages import render_page
from .responses import HTML_MEDIA_TYPE, YAML_MEDIA_TYPE

__all__ = ["http_refused", "refusal", "refused"]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def refusal(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """``detail`` with ``status``, as JSON, YAML or a page, as the request asks."""
    # The body depends on Accept: a cache must keep one per value.
    answer_headers = {**(headers or {}), "Vary": "Accept"}
    fmt = error_format(request.headers.get("accept"))
    if fmt == "html":
        body = render_page(
            "error.html",
            status=status,
            phrase=_phrase(status),
            detail=detail,
            etag=None,
            built_at=None,
        )
        return Response(body, status, answer_headers, media_type=HTML_MEDIA_TYPE)
    if fmt == "yaml":
        text = yaml.safe_dump({"detail": detail}, allow_unicode=True, width=1_000_000)
        return Response(text.encode(), status, answer_headers, media_type=YAML_MEDIA_TYPE)
    return JSONResponse({"detail": detail}, status_code=status, headers=answer_headers)


async def refused(request: Request, exc: Exception) -> Response:
    """The handler of ``RequestRefused`` (see service/errors.py)."""
    assert isinstance(exc, RequestRefused)
    return refusal(request, exc.status, exc.detail, exc.headers)


async def http_refused(request: Request, exc: Exception) -> Response:
    """The handler of the router's own refusals (an unknown path: 404; a method: 405): a page
    for a browser, FastAPI's own answer for everyone else."""
    assert isinstance(exc, StarletteHTTPException)
    if not prefers_html(request.headers.get("accept")):
        answer = await http_exception_handler(request, exc)
        answer.headers["Vary"] = "Accept"
        return answer
    return refusal(request, exc.status_code, str(exc.detail), exc.headers)
