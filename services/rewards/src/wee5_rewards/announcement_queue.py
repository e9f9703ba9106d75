"""Queueing announcements: in the transaction of what they announce (a level-up event's, a
reward's grant, a badge's award), at most once per (community, member, event, target), and
reading nothing but the community's settings, so XP and rewards never wait on them. The worker
that sends them is `wee5_rewards.announcing`.

A burst (a curve change that levels up thousands at once) is held to `burst` announcements per
community within any minute (`window`); past that, each further one is kept as `collapsed`
(never sent) and counted in one summary ("🎉 … and 1,980 more members leveled up"), sent a
window after the first it counted. Announcements of one community are queued one transaction at a time (an advisory
lock), so concurrent consumers cannot both see room for one more.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_rewards.announcements import Announcements, Cadence, Kind, Target
from wee5_rewards.models import CommunitySettings, Reward
from wee5_rewards.repository import AnnouncementRepository, NewAnnouncement, RewardsRepository

NO_DISCORD_BOT = "Discord announcements wait for the Discord bot (not part of this release)"
# Announcements sent per community and minute before the rest collapse into one summary.
DEFAULT_BURST = 20
BURST_WINDOW = timedelta(minutes=1)
SUMMARY_KIND = "summary"
SUMMARY_TEMPLATE = "🎉 … and {count} more members leveled up"


def announcements_of(row: CommunitySettings) -> Announcements:
    return Announcements(
        enabled=bool(row.announce),
        target=Target(row.announce_target or Target.ACTIVITY_CHANNEL),
        channel_id=row.announce_channel_id or "",
        level_ups=row.announce_level_ups is not False,
        rewards=row.announce_rewards is not False,
        badges=row.announce_badges is not False,
        cadence=Cadence(row.announce_every_levels or 1, row.announce_every_level_from or 0),
        templates={
            Kind.LEVEL_UP: row.level_up_template,
            Kind.REWARD: row.reward_template,
            Kind.BADGE: row.badge_template,
        },
    )


@dataclass(frozen=True)
class Subject:
    """What one announcement is about: unique per (community, member, kind, event_key)."""

    kind: Kind
    community_id: str
    user_id: str
    event_key: str
    facts: Mapping[str, object]


@dataclass(frozen=True)
class Announcer:
    """Queues announcements in the caller's transaction: at most `burst` per community within
    any `window`, the rest collapsed into one summary sent when the window has passed."""

    burst: int = DEFAULT_BURST
    window: timedelta = BURST_WINDOW

    async def level_up(self, session: AsyncSession, event: events_pb2.LevelUp) -> int | None:
        """The announcement of a level-up if the settings and the cadence want it (its id)."""
        settings = await settings_of(session, event.meta.community_id)
        if not settings.enabled or not settings.level_ups:
            return None
        levels = range(event.from_level + 1, event.to_level + 1)
        if not any(settings.cadence.announces(level) for level in levels):
            return None
        subject = Subject(
            Kind.LEVEL_UP,
            event.meta.community_id,
            event.user_id,
            f"level_up:{event.to_level}",
            {"level": event.to_level, "old_level": event.from_level, "xp": event.total_xp},
        )
        return await self._queue(session, settings, subject, event.channel_id)

    async def reward(self, session: AsyncSession, reward: Reward) -> int | None:
        """The announcement of a granted reward (free days, a discount code: never the code
        itself) if the settings want it."""
        settings = await settings_of(session, reward.community_id)
        if not settings.enabled or not settings.rewards:
            return None
        subject = Subject(
            Kind.REWARD,
            reward.community_id,
            reward.user_id,
            f"reward:{reward.id}",
            {"reward": describe(reward), "level": reward.level},
        )
        return await self._queue(session, settings, subject)

    async def badge(
        self, session: AsyncSession, community_id: str, user_id: str, badge_id: int, name: str
    ) -> int | None:
        settings = await settings_of(session, community_id)
        if not settings.enabled or not settings.badges:
            return None
        subject = Subject(Kind.BADGE, community_id, user_id, f"badge:{badge_id}", {"badge": name})
        return await self._queue(session, settings, subject)

    async def _queue(
        self,
        session: AsyncSession,
        settings: Announcements,
        subject: Subject,
        activity_channel: str = "",
    ) -> int | None:
        target = settings.target
        community_id = subject.community_id
        status, error = "pending", None
        if target.discord:
            status, error = "waiting", NO_DISCORD_BOT
        repository = AnnouncementRepository(session)
        await repository.lock_community(_lock_key(community_id))
        now = datetime.now(UTC)
        if await repository.sent_since(community_id, now - self.window) >= self.burst:
            status = "collapsed"
        created = await repository.add(
            NewAnnouncement(
                community_id=community_id,
                user_id=subject.user_id,
                kind=subject.kind.value,
                event_key=subject.event_key,
                target=target.value,
                channel_id=_channel(settings, community_id, activity_channel),
                facts={**subject.facts, "community": community_id},
                template=settings.template(subject.kind),
                status=status,
                last_error=error,
            )
        )
        if created is not None and status == "collapsed" and target is not Target.WHOP_PUSH:
            await _count_in_summary(session, settings, community_id, now, self.window)
        return created


async def settings_of(session: AsyncSession, community_id: str) -> Announcements:
    row = await RewardsRepository(session).settings(community_id)
    return announcements_of(row) if row is not None else Announcements()


def describe(reward: Reward) -> str:
    """The reward in words, as a message may show it to everyone."""
    if reward.kind == "free_days":
        days = reward.free_days or 0
        return f"{days} free day{'s' if days != 1 else ''}"
    if reward.kind == "discount_code":
        if reward.discount_type == "flat" and reward.amount_off_minor:
            amount = f"{reward.amount_off_minor / 100:.2f} {(reward.currency or 'usd').upper()}"
            return f"a discount code worth {amount}"
        return f"a {reward.discount_percent or 0} % discount code"
    return reward.kind.replace("_", " ")


def _channel(settings: Announcements, community_id: str, activity_channel: str) -> str | None:
    target = settings.target
    if target is Target.ACTIVITY_CHANNEL:
        # Whop posts to an experience's chat when given its id (PROVIDERS.md, "Sending").
        return activity_channel or community_id
    if target is Target.WHOP_PUSH:
        return community_id
    if target is Target.DISCORD_DM:
        return None
    return settings.channel_id or None


async def _count_in_summary(
    session: AsyncSession,
    settings: Announcements,
    community_id: str,
    now: datetime,
    window: timedelta,
) -> None:
    """One more in the summary of the burst under way (the community's pending summary), or a
    new one sent `window` from now (to the fixed channel, or the community's own chat)."""
    if await AnnouncementRepository(session).count_in_open_summary(community_id, now):
        return
    await AnnouncementRepository(session).add(
        NewAnnouncement(
            community_id=community_id,
            user_id="",
            kind=SUMMARY_KIND,
            event_key=f"summary:{now.isoformat()}",
            target=settings.target.value,
            channel_id=_channel(settings, community_id, ""),
            facts={"count": 1},
            template=SUMMARY_TEMPLATE,
            status="waiting" if settings.target.discord else "pending",
            last_error=NO_DISCORD_BOT if settings.target.discord else None,
            next_attempt_at=now + window,
        )
    )


def _lock_key(community_id: str) -> int:
    return zlib.crc32(f"wee5-announce:{community_id}".encode())
