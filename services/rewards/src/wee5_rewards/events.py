"""The events rewards consumes: `xp.level_up` becomes rewards, badge checks and its announcement,
`xp.awarded` badge checks, `xp.membership_changed` the subscription role given or taken. Each is
handled once per event id, but for `xp.awarded`, whose badge checks may run twice."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import Consumer, EventBus
from wee5_kit.logging import get_logger
from wee5_rewards.errors import InvalidLevelUp
from wee5_rewards.models import processed_events
from wee5_rewards.service import MemberFacts, RewardsService

log = get_logger("wee5.rewards")


def level_up_consumer(
    bus: EventBus,
    sessionmaker: async_sessionmaker[AsyncSession],
    service: RewardsService,
) -> Consumer[events_pb2.LevelUp]:
    async def on_level_up(session: AsyncSession, event: events_pb2.LevelUp) -> None:
        try:
            levels = await service.record_level_up(session, event)
            await service.announcer.level_up(session, event)
            badges = await service.evaluate_badges(
                session,
                event.meta.community_id,
                event.user_id,
                MemberFacts(total_xp=event.total_xp, level=event.to_level),
            )
        except InvalidLevelUp as error:
            # Redelivering it would fail the same way; it is marked handled and dropped.
            log.error("level-up ignored", reason=error.message)
            return
        if levels:
            log.info("rewards recorded", user_id=event.user_id, levels=levels)
        if badges:
            log.info("badges awarded", user_id=event.user_id, badges=badges)

    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        processed=processed_events,
        name="rewards.level_up",
        subject="xp.level_up",
        message_type=events_pb2.LevelUp,
        handler=on_level_up,
    )


def xp_awarded_consumer(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], service: RewardsService
) -> Consumer[events_pb2.XpAwarded]:
    async def on_awarded(session: AsyncSession, event: events_pb2.XpAwarded) -> None:
        try:
            badges = await service.evaluate_badges(
                session,
                event.meta.community_id,
                event.user_id,
                MemberFacts(total_xp=event.total_xp, level=event.level),
            )
        except InvalidLevelUp as error:
            log.error("xp event ignored", reason=error.message)
            return
        if badges:
            log.info("badges awarded", user_id=event.user_id, badges=badges)

    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        # Judging badges again changes nothing (a member holds a badge once, and one revoked
        # is never given back automatically): no claim per event, so a fetch that awards no
        # badge costs the database nothing.
        processed=None,
        name="rewards.xp_awarded",
        subject="xp.awarded",
        message_type=events_pb2.XpAwarded,
        handler=on_awarded,
    )


def membership_changed_consumer(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], service: RewardsService
) -> Consumer[events_pb2.MembershipChanged]:
    async def on_membership_changed(
        session: AsyncSession, event: events_pb2.MembershipChanged
    ) -> None:
        action = await service.membership_changed(session, event)
        if action:
            log.info("subscription role queued", user_id=event.user_id, action=action)

    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        processed=processed_events,
        name="rewards.membership_changed",
        subject="xp.membership_changed",
        message_type=events_pb2.MembershipChanged,
        handler=on_membership_changed,
    )
