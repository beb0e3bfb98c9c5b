"""Who may call the write endpoints: tokens, schemes, and the forced refresh's rate gate."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from service.config import ServerSettings
from service.errors import NotFound, TooManyRequests, Unauthorized
from service.web.auth import BearerToken, RefreshGate

TOKEN = "refresh-token-5f1d9c0a7e"


def test_the_refresh_gate_admits_again_once_its_interval_has_passed() -> None:
    now = [1000.0]
    server = ServerSettings(refresh_token=TOKEN, refresh_min_interval_seconds=10)
    gate = RefreshGate(server, clock=lambda: now[0])
    assert gate.wait_seconds() == 0
    now[0] += 4
    assert gate.wait_seconds() == pytest.approx(6)
    now[0] += 5.9
    assert gate.wait_seconds() == pytest.approx(0.1)
    now[0] += 0.1
    assert gate.wait_seconds() == 0
    # That admitted one more: the interval starts again from it.
    assert gate.wait_seconds() == pytest.approx(10)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        f"Bearer{TOKEN}",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        TOKEN,
        f"Bearer {TOKEN}x",
    ],
)
def test_only_the_bearer_scheme_with_the_token_is_authorised(authorization: str | None) -> None:
    gate = BearerToken(SecretStr(TOKEN))
    assert not gate.authorized(authorization)
    with pytest.raises(Unauthorized):
        gate.check(authorization)
    assert gate.authorized(f"Bearer {TOKEN}") and gate.authorized(f"bearer  {TOKEN} ")


def test_without_a_token_the_endpoint_is_off() -> None:
    gate = BearerToken(None)
    assert not gate.enabled and not gate.authorized(f"Bearer {TOKEN}")
    with pytest.raises(NotFound):
        gate.check(f"Bearer {TOKEN}")


def test_a_refresh_too_soon_is_told_when_to_come_back() -> None:
    now = [0.0]
    gate = RefreshGate(
        ServerSettings(refresh_token=TOKEN, refresh_min_interval_seconds=10), clock=lambda: now[0]
    )
    gate.admit(f"Bearer {TOKEN}")
    now[0] = 2.5
    with pytest.raises(TooManyRequests) as refused:
        gate.admit(f"Bearer {TOKEN}")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "8"}
