"""Every account of an AWS Organization: discovered, remembered, and read with one role each.

``Organization`` lists the organisation's ACTIVE accounts (``ListAccounts``, or a walk of
``ListChildren``/``ListAccountsForParent`` under the configured OUs), keeps the roster
(``roster.py``: never shrunk by one listing, saved in ``state_dir``), and gives each account
an ``AccountRole`` (``roles.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import OrganizationSettings, TargetSettings
from ..errors import EcrError
from ..reading import DiscoveryStatus
from ..statefiles import load_state_file, write_atomically
from .clients import Connections, assumed_role_session
from .ecr import per_second
from .errors import mapped_errors
from .partitions import partition_of
from .roles import AccountRole, StsPacer
from .roster import Roster, RosterChange

__all__ = ["Organization"]

log = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
ROSTER_FILE = Path("organization") / "roster.json"


class Organization:
    """The accounts of the organisation to read, rediscovered every ``rediscover_seconds``."""

    def __init__(
        self,
        settings: OrganizationSettings,
        connections: Connections,
        state_dir: Path | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        partitions: int = 1,
    ) -> None:
        self.settings = settings
        # Every partition of a fleet discovers: together they keep to calls_per_second.
        self._calls = per_second(settings.calls_per_second / partitions)
        self._connections = connections
        self._clock = clock
        self._roster_file = state_dir / ROSTER_FILE if state_dir else None
        self.roster = self._load_roster()
        home = settings.regions[0] if not settings.enabled_regions else "us-east-1"
        self._home = home
        self.partition = partition_of(home).name
        self._pacer = StsPacer(connections.settings.sts_calls_per_second)
        self._roles: dict[str, AccountRole] = {}
        self._management: Any = None
        self._account_api: Any = None
        self._last_attempt: datetime | None = None
        self._last_success: datetime | None = self.roster.discovered_at
        self._last_error: str | None = None
        self._due = time.monotonic()
        self._discoveries = 0
        self._failures = 0

    @property
    def status(self) -> DiscoveryStatus:
        return DiscoveryStatus(
            accounts=len(self.roster.accounts),
            last_attempt_at=self._last_attempt,
            last_success_at=self._last_success,
            last_error=self._last_error,
            leaving=self.roster.missed_once,
            discoveries=self._discoveries,
            failures=self._failures,
        )

    def regions_of(self, account: str) -> tuple[str, ...]:
        """The regions read in ``account``."""
        if self.settings.enabled_regions:
            return self.roster.regions.get(account, ())
        return tuple(self.settings.regions)

    def role(self, account: str) -> AccountRole:
        """The account's role, made on first use."""
        found = self._roles.get(account)
        if found is None:
            arn = f"arn:{self.partition}:iam::{account}:role/{self.settings.role_name}"
            found = self._roles[account] = AccountRole(
                arn,
                self.settings,
                self._connections,
                self._home,
                self._pacer,
            )
        return found

    async def rediscover(self, force: bool = False) -> RosterChange | None:
        """Discover now if due (or ``force``); None when nothing was discovered.

        A failure keeps the roster as it was, and says why in ``status``.
        """
        if not force and time.monotonic() < self._due:
            return None
        self._due = time.monotonic() + self.settings.rediscover_seconds
        self._last_attempt = self._clock()
        try:
            seen = await self._discover()
            regions = await self._enabled_regions(seen) if self.settings.enabled_regions else {}
        except EcrError as exc:
            self._failures += 1
            self._last_error = f"discovering the organisation's accounts failed: {exc}"
            log.warning(
                "%s; still reading the %d accounts known",
                self._last_error,
                len(self.roster.accounts),
            )
            return None
        self.roster, change = self.roster.after(seen, self._last_attempt, regions)
        self._discoveries += 1
        self._last_success, self._last_error = self._last_attempt, None
        for account in change.removed:
            self._roles.pop(account, None)
        if change.added or change.removed or change.leaving:
            log.info(
                "organisation: %d accounts; new %s; gone %s; missed once %s",
                len(self.roster.accounts),
                list(change.added),
                list(change.removed),
                list(change.leaving),
            )
        await asyncio.to_thread(self._save_roster)
        return change

    async def _management_client(self) -> Any:
        if self._management is None:
            connections = self._connections
            session = connections.own
            if self.settings.management_role_arn:
                target = TargetSettings(
                    regions=[self._home],
                    role_arn=self.settings.management_role_arn,
                    session_name=self.settings.session_name,
                )
                session = await assumed_role_session(
                    connections.base, target, connections.network, connections.config(self._home)
                )
            self._management = await connections.stack.enter_async_context(
                connections.client(session, "organizations", self._home)
            )
            self._account_api = await connections.stack.enter_async_context(
                connections.client(session, "account", self._home)
            )
        return self._management

    async def _discover(self) -> list[str]:
        client = await self._management_client()
        accounts: list[dict[str, Any]] = []
        if not self.settings.organizational_units:
            accounts = await self._every(client, "list_accounts", "Accounts")
        else:
            parents = list(self.settings.organizational_units)
            while parents:
                parent = parents.pop()
                accounts += await self._every(
                    client, "list_accounts_for_parent", "Accounts", ParentId=parent
                )
                children = await self._every(
                    client,
                    "list_children",
                    "Children",
                    ParentId=parent,
                    ChildType="ORGANIZATIONAL_UNIT",
                )
                parents += [str(child["Id"]) for child in children]
        active = {
            str(account["Id"])
            for account in accounts
            # Status is the old name of State; both say ACTIVE for an account to read.
            if (account.get("State") or account.get("Status")) == ACTIVE
        }
        return sorted(account for account in active if self.settings.wants(account))

    async def _enabled_regions(self, accounts: list[str]) -> dict[str, tuple[str, ...]]:
        await self._management_client()
        regions = {}
        for account in accounts:
            answers = await self._every(
                self._account_api,
                "list_regions",
                "Regions",
                AccountId=account,
                RegionOptStatusContains=["ENABLED", "ENABLED_BY_DEFAULT"],
            )
            regions[account] = tuple(sorted(str(region["RegionName"]) for region in answers))
        return regions

    async def _every(
        self, client: Any, operation: str, key: str, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item of a listing, through botocore's paginator; a failure on any page fails
        the whole listing."""
        items: list[dict[str, Any]] = []
        pages = client.get_paginator(operation).paginate(**params)
        ca_bundle = self._connections.network.ca_bundle
        # Organizations' calls are paced (the account API's ListRegions is throttled apart):
        # the paginator asks for the next page when the loop comes back for it.
        paced = client is self._management
        with mapped_errors("organization", self._home, operation, ca_bundle):
            if paced:
                await self._calls.acquire()
            async for page in pages:
                if paced:
                    await self._calls.acquire()
                if key not in page:
                    raise EcrError(
                        "organization", self._home, operation, "MalformedResponse", f"no {key!r}"
                    )
                items += page[key]
        return items

    def _load_roster(self) -> Roster:
        file = self._roster_file
        roster = (
            None if file is None else load_state_file(file, "organisation roster", Roster.from_json)
        )
        if roster is None:
            return Roster()
        log.info("organisation roster: %d accounts saved before", len(roster.accounts))
        return roster

    def _save_roster(self) -> None:
        if self._roster_file is None:
            return
        try:
            write_atomically(self._roster_file, self.roster.to_json())
        except OSError as exc:
            log.error("cannot save the organisation roster in %s: %s", self._roster_file, exc)
