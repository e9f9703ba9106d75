"""Whop memberships in xp: stored per company and user, found through any community of the
company, never moved backwards by an older update."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.conftest import MakeServicer
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_kit.errors import InvalidArgument, NotFound
from wee5_xp.models import outbox
from wee5_xp.servicer import XpServicer

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _set(
    company_id: str,
    user_id: str,
    at: datetime,
    *,
    status: str = "active",
    active: bool = True,
    membership_id: str = "mem_1",
    community_id: str = "",
) -> xp_pb2.SetMembershipRequest:
    membership = xp_pb2.Membership(
        company_id=company_id,
        user_id=user_id,
        membership_id=membership_id,
        status=status,
        active=active,
    )
    membership.updated_at.FromDatetime(at)
    return xp_pb2.SetMembershipRequest(membership=membership, community_id=community_id)


async def _activity(xp: XpServicer, community_id: str, user_id: str, company_id: str) -> None:
    activity = xp_pb2.Activity(
        community_id=community_id,
        user_id=user_id,
        kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
        source=xp_pb2.SOURCE_WHOP,
        idempotency_key=_id("msg"),
        company_id=company_id,
    )
    await xp.RecordActivity(xp_pb2.RecordActivityRequest(activity=activity), context=None)  # type: ignore[arg-type]


async def _get(xp: XpServicer, community_id: str, user_id: str) -> xp_pb2.Membership:
    reply = await xp.GetMembership(
        xp_pb2.GetMembershipRequest(community_id=community_id, user_id=user_id),
        context=None,  # type: ignore[arg-type]
    )
    return reply.membership


async def test_membership_applies_in_every_community_of_its_company(
    make_xp: MakeServicer,
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    company, user = _id("biz"), _id("user")
    chat, courses = _id("exp"), _id("exp")
    # Each experience is learned with its company from the envelopes it arrives in.
    await _activity(xp, chat, user, company)
    await _activity(xp, courses, _id("user"), company)

    await xp.SetMembership(_set(company, user, T0, membership_id="mem_abc"), context=None)  # type: ignore[arg-type]

    for community in (chat, courses):
        membership = await _get(xp, community, user)
        assert membership.membership_id == "mem_abc"
        assert membership.company_id == company
        assert membership.active
        assert membership.updated_at.ToDatetime(UTC) == T0


async def test_membership_of_another_company_is_not_found(make_xp: MakeServicer) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    user = _id("user")
    ours, theirs = _id("biz"), _id("biz")
    community = _id("exp")
    await _activity(xp, community, user, ours)
    await xp.SetMembership(_set(theirs, user, T0), context=None)  # type: ignore[arg-type]

    with pytest.raises(NotFound):
        await _get(xp, community, user)
    with pytest.raises(NotFound):
        await _get(xp, _id("exp"), user)  # a community whose company nobody has named


async def test_older_update_never_overwrites_a_newer_one(make_xp: MakeServicer) -> None:
    xp = make_xp()
    company, user, community = _id("biz"), _id("user"), _id("exp")
    later = T0 + timedelta(minutes=5)

    first: Any = await xp.SetMembership(
        _set(company, user, later, status="canceled", active=False, community_id=community),
        context=None,  # type: ignore[arg-type]
    )
    stale: Any = await xp.SetMembership(
        _set(company, user, T0, status="active", active=True, community_id=community),
        context=None,  # type: ignore[arg-type]
    )
    again: Any = await xp.SetMembership(
        _set(company, user, later, status="canceled", active=False, community_id=community),
        context=None,  # type: ignore[arg-type]
    )

    assert first.applied
    assert not stale.applied
    assert again.applied
    assert stale.membership.status == "canceled"
    stored = await _get(xp, community, user)
    assert (stored.status, stored.active) == ("canceled", False)


async def test_reactivation_after_cancel_is_stored(make_xp: MakeServicer) -> None:
    xp = make_xp()
    company, user, community = _id("biz"), _id("user"), _id("exp")
    await xp.SetMembership(
        _set(company, user, T0, status="canceled", active=False, community_id=community),
        context=None,  # type: ignore[arg-type]
    )
    await xp.SetMembership(
        _set(
            company, user, T0 + timedelta(days=3), membership_id="mem_new", community_id=community
        ),
        context=None,  # type: ignore[arg-type]
    )

    stored = await _get(xp, community, user)
    assert (stored.membership_id, stored.status, stored.active) == ("mem_new", "active", True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("company_id", ""), ("user_id", ""), ("membership_id", ""), ("user_id", "u" * 65)],
)
async def test_incomplete_membership_is_invalid(
    make_xp: MakeServicer, field: str, value: str
) -> None:
    xp = make_xp()
    request = _set(_id("biz"), _id("user"), T0)
    setattr(request.membership, field, value)

    with pytest.raises(InvalidArgument):
        await xp.SetMembership(request, context=None)  # type: ignore[arg-type]


async def test_membership_without_time_is_invalid(make_xp: MakeServicer) -> None:
    xp = make_xp()
    request = _set(_id("biz"), _id("user"), T0)
    request.membership.ClearField("updated_at")

    with pytest.raises(InvalidArgument) as raised:
        await xp.SetMembership(request, context=None)  # type: ignore[arg-type]
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_learned_company_is_announced_once_per_community_for_billing(
    make_xp: MakeServicer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """billing learns each community's Whop company from `xp.community_company`: queued in the
    outbox when xp stores the link, not again for every envelope naming the same company, and
    again when the community turns up in another company."""
    xp = make_xp(xp_cooldown_seconds=0)
    company, moved_to, community = _id("biz"), _id("biz"), _id("exp")

    await _activity(xp, community, _id("user"), company)
    await _activity(xp, community, _id("user"), company)
    await _activity(xp, community, _id("user"), moved_to)

    async with sessionmaker() as session:
        payloads = await session.scalars(
            select(outbox.c.payload)
            .where(outbox.c.subject == "xp.community_company")
            .order_by(outbox.c.id)
        )
        announced = [events_pb2.CommunityCompany.FromString(p) for p in payloads]
    assert [e.company_id for e in announced if e.meta.community_id == community] == [
        company,
        moved_to,
    ]
