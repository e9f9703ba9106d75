"""The automatic badges of each community, kept in memory between XP events.

Every `xp.awarded` judges its community's automatic badges. Reading them from Postgres was a
transaction for every fetch of events, most of them in communities without such badges; kept
here, a fetch that awards nothing costs the database nothing. An entry lives `ttl` seconds. A
change to a community's badges drops its entry once committed: in this process at once, and in
every other replica through `rewards.badges_changed` on plain NATS (no durable: each replica
must see each change; one it misses only means the entry lives out its ttl). A list read
before a drop is never kept after it (`TtlCache` generations), and each statement reads what
committed before it began, so no replica keeps badges older than a change it was told of.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.cache import TtlCache
from wee5_kit.events import EventBus
from wee5_kit.logging import get_logger
from wee5_kit.uow import UnitOfWork
from wee5_rewards.models import Badge
from wee5_rewards.repository import RewardsRepository

log = get_logger("wee5.rewards.badges")

BADGES_CHANGED = "rewards.badges_changed"


@dataclass(frozen=True)
class AutomaticBadge:
    """What judging and awarding a badge reads of it: a copy, so that no session's rollback
    can expire it while the cache holds it."""

    id: int
    community_id: str
    name: str
    criteria: str
    threshold: int
    activity_kind: str | None
    period: str
    role_id: str | None

    @classmethod
    def of(cls, badge: Badge) -> AutomaticBadge:
        return cls(
            badge.id,
            badge.community_id,
            badge.name,
            badge.criteria,
            badge.threshold,
            badge.activity_kind,
            badge.period,
            badge.role_id,
        )


class BadgeCatalog:
    def __init__(self, ttl: float = 30.0) -> None:
        self._cache: TtlCache[str, tuple[AutomaticBadge, ...]] = TtlCache(ttl)
        self._bus: EventBus | None = None

    async def automatic(
        self, session: AsyncSession, community_id: str
    ) -> tuple[AutomaticBadge, ...]:
        """The community's badges given by criteria, in id order."""
        found, badges = self._cache.lookup(community_id)
        if found and badges is not None:
            return badges
        generation = self._cache.generation()
        rows = await RewardsRepository(session).automatic_badges(community_id)
        badges = tuple(AutomaticBadge.of(row) for row in rows)
        self._cache.put(community_id, badges, generation)
        return badges

    def changed(self, session: AsyncSession, community_id: str) -> None:
        """The community's badges change in `session`'s transaction: once it commits, every
        replica forgets them."""
        UnitOfWork.of(session).on_commit(lambda: self._announce(community_id))

    def drop(self, community_id: str) -> None:
        self._cache.invalidate(community_id)

    async def _announce(self, community_id: str) -> None:
        self.drop(community_id)
        if self._bus is not None:
            await self._bus.nc.publish(self._bus.subject(BADGES_CHANGED), community_id.encode())

    async def listen(self, bus: EventBus) -> Subscription:
        """Drops what other replicas announce changed, and announces this one's changes."""

        async def on_change(msg: Msg) -> None:
            self.drop(msg.data.decode(errors="replace"))

        subscription = await bus.nc.subscribe(bus.subject(BADGES_CHANGED), cb=on_change)
        self._bus = bus
        return subscription

    async def stop(self, subscription: Subscription) -> None:
        self._bus = None
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
