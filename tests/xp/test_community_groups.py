"""xp follows billing's `billing.community_group`: a community joining a WEE5 group has the group
as its company, leaving it has none; a Whop company is never replaced by a group, and an older
change delivered after a newer one changes nothing. Against the xp server as
`python -m wee5_xp` builds it, NATS and Postgres (events sent through billing's outbox)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.faults import eventually
from tests.xp.test_points import publish
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_billing.models import outbox as billing_outbox
from wee5_kit.events import EventBus, new_meta

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Stub

Sessions = async_sessionmaker[AsyncSession]
SUBJECT = "billing.community_group"


def _group_event(
    community_id: str, group_id: str, at: datetime | None = None
) -> events_pb2.CommunityGroup:
    event = events_pb2.CommunityGroup(meta=new_meta(community_id), group_id=group_id)
    if at is not None:
        event.meta.occurred_at.FromDatetime(at)
    return event


async def _communities(xp: Stub, company_id: str) -> set[str]:
    reply = await xp.GetCompany(xp_pb2.GetCompanyRequest(company_id=company_id))
    return {c.community_id for c in reply.communities}


async def _until(xp: Stub, company_id: str, communities: set[str]) -> None:
    async def reached() -> bool:
        return await _communities(xp, company_id) == communities

    await eventually(reached, within=20)


def _tag() -> str:
    return uuid.uuid4().hex[:10]


async def test_a_community_joins_and_leaves_a_group(
    xp_grpc: Stub, bus: EventBus, sessionmaker: Sessions
) -> None:
    group, community = f"grp_{_tag()}", f"guild_{_tag()}"
    await publish(sessionmaker, bus, billing_outbox, SUBJECT, _group_event(community, group))
    await _until(xp_grpc, group, {community})

    await publish(sessionmaker, bus, billing_outbox, SUBJECT, _group_event(community, ""))

    await _until(xp_grpc, group, set())


async def test_an_older_change_delivered_late_changes_nothing(
    xp_grpc: Stub, bus: EventBus, sessionmaker: Sessions
) -> None:
    group, community, marker = f"grp_{_tag()}", f"guild_{_tag()}", f"guild_{_tag()}"
    now = datetime.now(UTC)
    joined = _group_event(community, group, now)
    await publish(sessionmaker, bus, billing_outbox, SUBJECT, joined)
    await _until(xp_grpc, group, {community})

    # A leave of before the join, then (in order, so handled after it) a marker community.
    left_before = _group_event(community, "", now - timedelta(seconds=5))
    await publish(
        sessionmaker, bus, billing_outbox, SUBJECT, left_before, _group_event(marker, group)
    )

    await _until(xp_grpc, group, {community, marker})
    # Its leave, newer than the join: it goes.
    await publish(
        sessionmaker,
        bus,
        billing_outbox,
        SUBJECT,
        _group_event(community, "", now + timedelta(seconds=10)),
    )
    await _until(xp_grpc, group, {marker})
    # The join again, older than that leave: still out.
    rejoined_late = _group_event(community, group, now + timedelta(seconds=1))
    await publish(sessionmaker, bus, billing_outbox, SUBJECT, rejoined_late)
    await publish(
        sessionmaker,
        bus,
        billing_outbox,
        SUBJECT,
        _group_event(marker, "", now + timedelta(seconds=20)),
    )
    await _until(xp_grpc, group, set())


async def test_a_whop_company_is_never_replaced_by_a_group(
    xp_grpc: Stub, bus: EventBus, sessionmaker: Sessions
) -> None:
    company, group = f"biz_{_tag()}", f"grp_{_tag()}"
    experience, marker = f"exp_{_tag()}", f"guild_{_tag()}"
    # xp learns the experience's Whop company from an activity's envelope.
    await xp_grpc.RecordActivity(
        xp_pb2.RecordActivityRequest(
            activity=xp_pb2.Activity(
                community_id=experience,
                user_id="user_a",
                kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                source=xp_pb2.SOURCE_WHOP,
                idempotency_key=f"evt_{uuid.uuid4().hex}",
                company_id=company,
            )
        )
    )
    assert await _communities(xp_grpc, company) == {experience}

    await publish(
        sessionmaker,
        bus,
        billing_outbox,
        SUBJECT,
        _group_event(experience, group),
        _group_event(experience, ""),
        _group_event(marker, group),
    )

    await _until(xp_grpc, group, {marker})
    assert await _communities(xp_grpc, company) == {experience}
