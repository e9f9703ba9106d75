"""Queueing announcements: in the transaction of what they announce (a level-up event's, a
reward's grant, a badge's award), at most once per (community, member, event, target), and
reading nothing but the community's settings, so XP and rewards never wait on them. The worker
that sends them is `wee5_rewards.announcing`.

A burst (a curve change that levels up thousands at once) is held to `burst` announcements per
community within any minute (`window`); past that, each further one is kept as `collapsed`
(never sent) and counted in one summary ("🎉 … and 1,980 more members leveled up"), sent a
window after the first it counted. Announcements of one community are queued one transaction at a time (an advisory
lock), so concurrent consumers cannot both see room for one more.

The app hears of each one too, in the same transaction: a `rewards.announced` event with the
community's template rendered as plain text for the member's toast, once per (community,
member, event). It is published whether or not the community sends announcements (the switch,
the kinds and the cadence say what is posted in chat or pushed, not what a member sees of
their own progress), so members read the community's words in the app either way. Rendering it
asks xp for the member's name and rank (within the deadline); without an answer it is rendered
from what the event says, never held up.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import get_logger
from wee5_rewards.announcements import Announcements, Cadence, Kind, Target, mention, render
from wee5_rewards.models import CommunitySettings, Reward
from wee5_rewards.repository import AnnouncementRepository, NewAnnouncement, RewardsRepository

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

log = get_logger("wee5.rewards.announcements")

NO_DISCORD_BOT = (
    "WEE5_DISCORD_BOT_TOKEN is not set: Discord announcements wait until the rewards process "
    "has the bot's token"
)
# What announcements created before the Discord bot existed wait with.
OLD_NO_DISCORD_BOT = "Discord announcements wait for the Discord bot (not part of this release)"
# Announcements sent per community and minute before the rest collapse into one summary.
DEFAULT_BURST = 20
BURST_WINDOW = timedelta(minutes=1)
SUMMARY_KIND = "summary"
SUMMARY_TEMPLATE = "🎉 … and {count} more members leveled up"
ANNOUNCED = "rewards.announced"


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
    # Which level, reward or badge, as `rewards.announced` names it.
    level: int = 0
    reward_id: str = ""
    badge_id: str = ""


@dataclass(frozen=True)
class Announcer:
    """Queues announcements in the caller's transaction: at most `burst` per community within
    any `window`, the rest collapsed into one summary sent when the window has passed; and
    tells the app (through `events`, the rewards outbox) what the member's toast says."""

    burst: int = DEFAULT_BURST
    window: timedelta = BURST_WINDOW
    # None: no `rewards.announced` events (a service built without an outbox of its own).
    events: Outbox | None = None
    # Where the member's name and rank come from; None: the event's facts alone.
    xp: XpServiceAsyncStub | None = None
    xp_timeout: float = 5.0

    async def level_up(self, session: AsyncSession, event: events_pb2.LevelUp) -> int | None:
        """The announcement of a level-up if the settings and the cadence want it (its id)."""
        settings = await settings_of(session, event.meta.community_id)
        subject = Subject(
            Kind.LEVEL_UP,
            event.meta.community_id,
            event.user_id,
            f"level_up:{event.to_level}",
            {"level": event.to_level, "old_level": event.from_level, "xp": event.total_xp},
            level=event.to_level,
        )
        await self._show_in_app(session, settings, subject)
        if not settings.enabled or not settings.level_ups:
            return None
        levels = range(event.from_level + 1, event.to_level + 1)
        if not any(settings.cadence.announces(level) for level in levels):
            return None
        return await self._queue(session, settings, subject, event.channel_id)

    async def reward(self, session: AsyncSession, reward: Reward) -> int | None:
        """The announcement of a granted reward (free days, a discount code: never the code
        itself) if the settings want it."""
        settings = await settings_of(session, reward.community_id)
        subject = Subject(
            Kind.REWARD,
            reward.community_id,
            reward.user_id,
            f"reward:{reward.id}",
            {"reward": describe(reward), "level": reward.level},
            level=reward.level,
            reward_id=str(reward.id),
        )
        await self._show_in_app(session, settings, subject)
        if not settings.enabled or not settings.rewards:
            return None
        return await self._queue(session, settings, subject)

    async def badge(
        self, session: AsyncSession, community_id: str, user_id: str, badge_id: int, name: str
    ) -> int | None:
        settings = await settings_of(session, community_id)
        subject = Subject(
            Kind.BADGE,
            community_id,
            user_id,
            f"badge:{badge_id}",
            {"badge": name},
            badge_id=str(badge_id),
        )
        await self._show_in_app(session, settings, subject)
        if not settings.enabled or not settings.badges:
            return None
        return await self._queue(session, settings, subject)

    async def _show_in_app(
        self, session: AsyncSession, settings: Announcements, subject: Subject
    ) -> None:
        """Queues `rewards.announced` with the member's toast, once per (member, event)."""
        if self.events is None:
            return
        repository = AnnouncementRepository(session)
        kind = subject.kind.value
        if await repository.in_app_shown(
            subject.community_id, subject.user_id, kind, subject.event_key
        ):
            return
        member = await self._member(subject.community_id, subject.user_id)
        facts = {**subject.facts, "community": subject.community_id}
        values = template_values(facts, member, subject.user_id, Target.IN_APP)
        event = events_pb2.Announced(
            meta=new_meta(subject.community_id),
            user_id=subject.user_id,
            kind=kind,
            level=subject.level,
            reward_id=subject.reward_id,
            badge_id=subject.badge_id,
            text=render(settings.template(subject.kind), values, Target.IN_APP).strip(),
        )
        if await repository.add_in_app(
            subject.community_id,
            subject.user_id,
            kind,
            subject.event_key,
            event.text,
            event.meta.event_id,
        ):
            await self.events.add(session, ANNOUNCED, event)

    async def _member(self, community_id: str, user_id: str) -> xp_pb2.Member:
        """The member as xp knows them, or an empty one when xp cannot say in time."""
        if self.xp is None:
            return xp_pb2.Member()
        try:
            return await member_of(self.xp, community_id, user_id, deadline=self.xp_timeout)
        except grpc.aio.AioRpcError as error:
            log.warning("in-app announcement without the member's name", code=error.code().name)
            return xp_pb2.Member()

    async def _queue(
        self,
        session: AsyncSession,
        settings: Announcements,
        subject: Subject,
        activity_channel: str = "",
    ) -> int | None:
        target = settings.target
        community_id = subject.community_id
        status = "pending"
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
            )
        )
        if created is not None and status == "collapsed" and target is not Target.WHOP_PUSH:
            await _count_in_summary(session, settings, community_id, now, self.window)
        return created


async def member_of(
    xp: XpServiceAsyncStub, community_id: str, user_id: str, *, deadline: float | None = None
) -> xp_pb2.Member:
    """The member as xp knows them now; an empty one when xp knows nothing of them (any more)."""
    try:
        reply = await xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id), timeout=deadline
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return xp_pb2.Member()
    return reply.member


def template_values(
    facts: Mapping[str, object], member: xp_pb2.Member, user_id: str, target: Target
) -> dict[str, str]:
    """A template's values: the facts an announcement was created with, and the member as xp
    knows them (name, rank, XP to the next level)."""
    name = member.profile.display_name or member.profile.username or user_id
    return {
        "member": name,
        "mention": mention(
            target, user_id=user_id, username=member.profile.username, display_name=name
        ),
        "level": str(facts.get("level", member.level)),
        "old_level": str(facts.get("old_level", "")),
        "xp": str(member.xp or facts.get("xp", "")),
        "next_level_xp": str(max(0, member.xp_for_next_level - member.xp_into_level)),
        "reward": str(facts.get("reward", "")),
        "badge": str(facts.get("badge", "")),
        "community": str(facts.get("community", "")),
        "rank": str(member.rank or ""),
    }


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
            status="pending",
            next_attempt_at=now + window,
        )
    )


def _lock_key(community_id: str) -> int:
    return zlib.crc32(f"wee5-announce:{community_id}".encode())
