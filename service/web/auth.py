"""Who may call the two write endpoints: bearer tokens, and the forced refresh's rate gate."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable

from pydantic import SecretStr

from ..config import EventsSettings, ServerSettings
from ..errors import NotFound, TooManyRequests, Unauthorized

__all__ = ["BearerToken", "EventsGate", "RefreshGate"]


class BearerToken:
    """A configured secret that callers send as ``Authorization: Bearer <token>``."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value().encode("utf-8") if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def authorized(self, authorization: str | None) -> bool:
        """Whether the header carries the token, in the Bearer scheme."""
        scheme, _, offered = (authorization or "").partition(" ")
        if self._token is None or scheme.lower() != "bearer":
            return False
        # Constant time, so the comparison leaks nothing of the token.
        return hmac.compare_digest(offered.strip().encode("utf-8"), self._token)

    def check(self, authorization: str | None) -> None:
        """NotFound when no token is configured (the endpoint is off), Unauthorized without it."""
        if not self.enabled:
            raise NotFound("Not Found")
        if not self.authorized(authorization):
            raise Unauthorized()


class RefreshGate(BearerToken):
    """Who may force a refresh, and how often: off without a token, at most one per interval."""

    def __init__(self, server: ServerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(server.refresh_token)
        self._min_interval = server.refresh_min_interval_seconds
        self._clock = clock
        self._last: float | None = None

    def wait_seconds(self) -> float:
        """0 when a refresh may start now (and record it); else how long until one may."""
        now = self._clock()
        if self._last is not None and now - self._last < self._min_interval:
            return self._min_interval - (now - self._last)
        self._last = now
        return 0.0

    def admit(self, authorization: str | None) -> None:
        """Let one forced refresh through, or raise what the caller gets instead."""
        self.check(authorization)
        wait = self.wait_seconds()
        if wait > 0:
            raise TooManyRequests("a refresh ran too recently", math.ceil(wait))


class EventsGate(BearerToken):
    """POST /events/ecr: its token, debounce and body limit."""

    def __init__(self, events: EventsSettings) -> None:
        super().__init__(events.token)
        self.debounce_seconds = events.debounce_seconds
        self.max_body_bytes = events.max_body_bytes
