"""What the Slack listeners need from the rest of the service, handed over in one object."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.review import Reviewers
from bot.runtime.metrics import NO_METRICS, Metrics
from bot.settings import Settings

log = logging.getLogger(__name__)

# Looks up the members of one user group (S…); raises on any failure.
GroupLookup = Callable[[str], Awaitable[Iterable[str]]]


class ReviewerDirectory:
    """Answers "may this user decide?", resolving user groups through Slack with a short cache.

    A failed lookup is not cached and denies (unless the user is named directly): an outage must
    never let a non-reviewer decide.
    """

    def __init__(self, reviewers: Reviewers, lookup: GroupLookup | None, *, ttl: float = 60.0) -> None:
        self.reviewers = reviewers
        self.lookup = lookup
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def _members(self, group: str) -> frozenset[str] | None:
        hit = self._cache.get(group)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        if self.lookup is None:
            return None
        try:
            members = frozenset(await self.lookup(group))
        except Exception as e:
            log.warning("could not resolve reviewer group %s: %s", group, e)
            return None
        self._cache[group] = (time.monotonic(), members)
        return members

    async def is_reviewer(self, user_id: str) -> bool:
        if user_id in self.reviewers.users:
            return True
        groups: dict[str, frozenset[str]] = {}
        for g in self.reviewers.groups:
            members = await self._members(g)
            if members is None:
                continue  # this group cannot vouch for anyone right now
            groups[g] = members
        return self.reviewers.allows(user_id, groups)


@dataclass
class Services:
    engine: Engine
    settings: Settings
    reviewers: ReviewerDirectory
    wake_outbox: Callable[[], None] = field(default=lambda: None)
    metrics: Metrics = NO_METRICS  # the Service's counters (bot.runtime.metrics): Slack submissions, decisions
