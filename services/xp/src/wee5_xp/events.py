"""The events xp consumes: points for actions in other contexts, once per action; and
billing's word on which WEE5 group a community is in.

Each consumer is durable and idempotent twice over: the kit records every event id it handled,
and the points' idempotency key is derived from the action itself (e.g.
`benchmark:{community}:{user}:{category}`), so even two different events announcing the same
first submission give points once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.errors import DomainError
from wee5_kit.events import Consumer, E, EventBus, occurred_at
from wee5_kit.logging import get_logger
from wee5_xp.companies import CompanyBoards
from wee5_xp.models import processed_events
from wee5_xp.points import PointsAward, PointsService

log = get_logger("wee5.xp")
COMMUNITY_GROUP = "billing.community_group"


def _points_consumer(
    bus: EventBus,
    sessionmaker: async_sessionmaker[AsyncSession],
    points: PointsService,
    *,
    name: str,
    subject: str,
    message_type: Callable[[], E],
    award_for: Callable[[E], PointsAward | None],
) -> Consumer[E]:
    async def on_event(session: AsyncSession, event: E) -> None:
        award = award_for(event)
        if award is None:
            return
        try:
            result = await points.award(session, award)
        except DomainError as error:
            # Redelivering it would fail the same way; it is marked handled and dropped.
            log.error("points event ignored", subject=subject, reason=error.message)
            return
        log.info(
            "points awarded" if not result.duplicate else "points already awarded",
            user_id=award.user_id,
            reason=award.reason,
            points=result.points,
        )

    # The kit runs the handler in a unit of work: the boards follow once it committed.
    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        processed=processed_events,
        name=name,
        subject=subject,
        message_type=message_type,
        handler=on_event,
    )


def benchmark_award(event: events_pb2.BenchmarkSubmitted) -> PointsAward | None:
    """+points for a member's first submission in a category; later ones earn nothing."""
    if not event.first_in_category:
        return None
    community = event.meta.community_id
    return PointsAward(
        community_id=community,
        user_id=event.user_id,
        reason="benchmark_submitted",
        idempotency_key=f"benchmark:{community}:{event.user_id}:{event.category}",
        source="benchmarks",
    )


def download_award(event: events_pb2.ResourceDownloaded) -> PointsAward | None:
    """+points for a member's first download of a resource."""
    if not event.first_by_member:
        return None
    community = event.meta.community_id
    return PointsAward(
        community_id=community,
        user_id=event.user_id,
        reason="resource_downloaded",
        idempotency_key=f"download:{community}:{event.user_id}:{event.resource_id}",
        source="resources",
    )


def renewal_award(event: events_pb2.SubscriptionRenewed) -> PointsAward | None:
    """+points to the owner for each paid renewal invoice."""
    community = event.meta.community_id
    invoice = event.invoice_id or event.meta.event_id
    return PointsAward(
        community_id=community,
        user_id=event.owner_user_id,
        reason="subscription_renewed",
        idempotency_key=f"renewal:{community}:{invoice}",
        source="billing",
    )


def points_consumers(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], points: PointsService
) -> list[Consumer[Any]]:
    """The consumers of benchmarks.submitted, resources.downloaded and
    billing.subscription.renewed; the xp server runs them in the background."""
    return [
        _points_consumer(
            bus,
            sessionmaker,
            points,
            name="xp.benchmark_points",
            subject="benchmarks.submitted",
            message_type=events_pb2.BenchmarkSubmitted,
            award_for=benchmark_award,
        ),
        _points_consumer(
            bus,
            sessionmaker,
            points,
            name="xp.download_points",
            subject="resources.downloaded",
            message_type=events_pb2.ResourceDownloaded,
            award_for=download_award,
        ),
        _points_consumer(
            bus,
            sessionmaker,
            points,
            name="xp.renewal_points",
            subject="billing.subscription.renewed",
            message_type=events_pb2.SubscriptionRenewed,
            award_for=renewal_award,
        ),
    ]


def community_group_consumer(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], boards: CompanyBoards
) -> Consumer[events_pb2.CommunityGroup]:
    """The consumer of billing.community_group: the community's company follows its WEE5
    group (handled once per event id; an older change than the one applied changes nothing)."""

    async def on_event(session: AsyncSession, event: events_pb2.CommunityGroup) -> None:
        changed_at = occurred_at(event.meta)
        await boards.set_group(session, event.meta.community_id, event.group_id, changed_at)

    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        processed=processed_events,
        name="xp.community_group",
        subject=COMMUNITY_GROUP,
        message_type=events_pb2.CommunityGroup,
        handler=on_event,
    )
