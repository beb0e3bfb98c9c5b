"""Backstage's catalog API, as far as this service calls it: refresh, one entity, a query.

Every call carries the static external-access token as a Bearer token
(``backend.auth.externalAccess``, docs/backstage-both-ways.md). Timeouts are
short: nothing waits on these calls, but a hung Backstage must not hold a task for ever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from .. import __version__
from ..config import BackstageSettings
from ..errors import BackstageError
from ..names import EntityRef

__all__ = ["BackstageClient"]

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
PAGE_SIZE = 500
# What a claim needs of each entity; the rest of a Component is never transferred.
CLAIMER_FIELDS = "kind,metadata.name,metadata.namespace,metadata.annotations,spec.owner"


class BackstageClient:
    """One connection pool to Backstage for the life of the app."""

    def __init__(
        self, settings: BackstageSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        assert settings.base_url is not None
        headers = {"User-Agent": f"ecr-catalog/{__version__}"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        # HTTP(S)_PROXY, NO_PROXY and SSL_CERT_FILE apply as httpx reads them (trust_env).
        self._secret = settings.token.get_secret_value() if settings.token else None
        self._http = httpx.AsyncClient(
            base_url=f"{settings.base_url}/api/catalog",
            headers=headers,
            timeout=TIMEOUT,
            transport=transport,
        )
        self.base_url = settings.base_url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, what: str, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as exc:
            raise BackstageError(
                what, None, self._redacted(f"{type(exc).__name__}: {exc}")
            ) from exc
        if response.status_code >= 300:
            raise BackstageError(what, response.status_code, _reason(response))
        return response

    def _redacted(self, message: str) -> str:
        # An error may quote the request's headers (an HTTP library refusing one, say).
        return message.replace(self._secret, "***") if self._secret else message

    async def refresh(self, entity_ref: str) -> None:
        """Ask Backstage to process ``entity_ref`` and its Location now."""
        request = self._http.build_request("POST", "/refresh", json={"entityRef": entity_ref})
        await self._send(f"refresh of {entity_ref}", request)

    async def entity(self, ref: EntityRef) -> dict[str, Any] | None:
        """The entity, or None when Backstage does not have it."""
        path = "/entities/by-name/" + "/".join(
            quote(part, safe="") for part in (ref.kind, ref.namespace, ref.name)
        )
        try:
            response = await self._send(f"reading {ref}", self._http.build_request("GET", path))
        except BackstageError as exc:
            if exc.status == 404:
                return None
            raise
        return _object(response, f"reading {ref}")

    async def entities_matching(
        self, filters: Sequence[str], page_size: int = PAGE_SIZE
    ) -> AsyncIterator[list[Any]]:
        """Every entity that matches any of ``filters`` (Backstage's filter syntax), page by
        page (cursor pagination), ``page_size`` at a time."""
        what = "querying the entities that claim repositories"
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("filter", condition) for condition in filters
        ]
        params += [("fields", CLAIMER_FIELDS), ("limit", page_size)]
        seen: set[str] = set()
        while True:
            request = self._http.build_request("GET", "/entities/by-query", params=params)
            page = _object(await self._send(what, request), what)
            items = page.get("items")
            if not isinstance(items, list):
                raise BackstageError(what, 200, "the answer has no list of items")
            yield items
            cursor = (page.get("pageInfo") or {}).get("nextCursor")
            if not cursor:
                return
            if cursor in seen:
                raise BackstageError(what, 200, "the same page cursor came back twice")
            seen.add(cursor)
            # A cursor carries the filter; the query is the cursor, the fields and the size.
            params = [("cursor", cursor), ("fields", CLAIMER_FIELDS), ("limit", page_size)]


def _reason(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        message = error.get("message") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        message = None
    return str(message or response.reason_phrase or "no reason given")[:300]


def _object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError as exc:
        raise BackstageError(what, response.status_code, "the answer is not JSON") from exc
    if not isinstance(document, dict):
        raise BackstageError(what, response.status_code, "the answer is not a JSON object")
    return document
