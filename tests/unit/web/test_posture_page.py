"""The entity page shows each check as the build judged it, from the typed verdicts."""

from __future__ import annotations

import re

from service.config import Settings

from ...records import ACCOUNT, repository, source
from ...support import FakeReader, in_process

PAGE = f"/entities/resource/default/team-a--api.us-east-1.{ACCOUNT}"


def verdicts(html: str) -> dict[str, str]:
    rows = re.findall(
        r'<tr data-check="([^"]+)"><td>[^<]*</td><td class="[^"]*">([^<]*)</td>', html
    )
    return dict(rows)


async def page_with(posture: dict[str, object]) -> dict[str, str]:
    settings = Settings(
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05}, posture=posture
    )
    async with in_process(settings, FakeReader(source(repository("team-a/api")))) as (client, _):
        response = await client.get(PAGE, headers={"Accept": "text/html"})
        assert response.status_code == 200
        return verdicts(response.text)


async def test_a_check_that_is_not_made_is_never_shown_as_a_pass() -> None:
    # With both stale thresholds null, assess() makes no `stale` check: the page used to work
    # the checks out from the settings and show it as a pass.
    shown = await page_with({"stale_pull_days": None, "stale_push_days": None})
    assert shown["stale"] == "not assessed"
    assert shown["encryption"] == "not assessed"  # require_kms is off
    assert shown["tag-immutability"] == "pass"


async def test_a_check_that_is_made_shows_its_verdict() -> None:
    shown = await page_with({"stale_pull_days": 1, "require_kms": True})
    # The records were pulled on 2026-01-09 (tests/records.py), long before today.
    assert shown["stale"] == "fail"
    assert shown["encryption"] == "fail"  # AES256, not KMS


def reasons(html: str) -> dict[str, str]:
    rows = re.findall(
        r'<tr data-check="([^"]+)"><td>[^<]*</td><td class="[^"]*">[^<]*</td>'
        r'<td class="why">([^<]*)</td>',
        html,
    )
    return dict(rows)


async def test_each_check_that_does_not_pass_says_why_on_the_page() -> None:
    settings = Settings(
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05},
        posture={"stale_pull_days": 1, "require_kms": True},
    )
    async with in_process(settings, FakeReader(source(repository("team-a/api")))) as (client, _):
        page = (await client.get(PAGE, headers={"Accept": "text/html"})).text
        report = (await client.get("/posture")).json()
    why = reasons(page)
    shown = verdicts(page)
    assert why["encryption"] == "encrypted with AES256, not KMS (posture.require_kms)"
    assert why["stale"] == "last pulled 2026-01-09, more than 1 day ago (posture.stale_pull_days)"
    # A pass says nothing; every check that did not pass says something.
    for check, verdict in shown.items():
        assert bool(why[check]) == (verdict in ("fail", "unknown")), check
    (repository_report,) = report["repositories"]
    assert repository_report["reasons"]["encryption"] == why["encryption"]
    assert set(repository_report["reasons"]) == set(
        repository_report["failures"] + repository_report["unknown"]
    )
