"""The short soak: every fault type once, with clients polling and repositories churning."""

from __future__ import annotations

from ..faults.soak import FAULTS, run_soak


def test_short_soak_loses_nothing_and_never_fails() -> None:
    report = run_soak(seconds=36, clients=6, repositories=30, interval=1.0)
    print(report.table())
    print(*report.violations, sep="\n")
    assert report.violations == []
    assert report.cycles == len(FAULTS)
    # Every kind of fault was really injected, and the clients saw both 200s and 304s.
    injected = set(report.injected)
    assert {
        "throttle",
        "reset",
        "hang",
        "access_denied",
        "garbage",
        "truncated",
        "refused",
    } <= injected
    assert {"http_500", "http_503"} & injected
    assert report.responses["200"] > 100 and report.responses["304"] > 100
    assert report.created > 5 and report.deleted > 5
    assert report.convergence_seconds is not None
