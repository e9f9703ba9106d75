"""Community analytics (activities, XP and active members per UTC day) over the real xp gRPC
server. Activities of past days are written straight into xp.activities with the time xp
would have recorded them; today's go through RecordActivity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.xp.conftest import MakeServicer
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.grpc import channel
from wee5_xp.awards import ActivityInput
from wee5_xp.config import XpSettings
from wee5_xp.models import Activity, Community, LedgerEntry
from wee5_xp.rules import XpRange
from wee5_xp.server import build

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Xp


@pytest.fixture(scope="module")
async def xp(database_url: str) -> AsyncIterator[Xp]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    async with channel(addr) as chan:
        yield xp_pb2_grpc.XpServiceStub(chan)
    await server.stop()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def recorded(
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
    rows: list[tuple[str, str, int]],
) -> None:
    """Activities as xp records them, with their ledger entries: (recorded at, user, XP
    awarded); 0 XP = skipped."""
    async with sessionmaker.begin() as session:
        for n, (when, user_id, xp) in enumerate(rows):
            if xp:
                session.add(
                    LedgerEntry(
                        community_id=community_id,
                        user_id=user_id,
                        delta=xp,
                        reason="message",
                        source="whop",
                        balance_after=xp,
                        created_at=at(when),
                    )
                )
            session.add(
                Activity(
                    community_id=community_id,
                    user_id=user_id,
                    kind="message",
                    source="whop",
                    idempotency_key=f"analytics-{n}",
                    recorded_at=at(when),
                    xp_awarded=xp,
                    skip_reason=None if xp else "cooldown",
                )
            )


async def analytics(
    xp: Xp, community_id: str, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[str, int, int, int]]:
    request = xp_pb2.GetAnalyticsRequest(community_id=community_id)
    if since is not None:
        request.since.FromDatetime(since)
    if until is not None:
        request.until.FromDatetime(until)
    reply = await xp.GetAnalytics(request)
    return [(d.day, d.activities, d.xp, d.active_members) for d in reply.days]


async def test_analytics_counts_activities_xp_and_earning_members_per_utc_day(
    xp: Xp, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    await recorded(
        sessionmaker,
        community_id,
        [
            ("2025-03-09T23:59:59.999999", "user_a", 20),  # before the window
            ("2025-03-10T00:00:00", "user_a", 20),
            ("2025-03-10T12:00:00", "user_a", 20),
            ("2025-03-10T23:59:59.999999", "user_b", 0),  # skipped: counted, earned nothing
            ("2025-03-11T00:00:00", "user_b", 5),
            ("2025-03-13T10:00:00", "user_a", 15),
            ("2025-03-13T10:00:00", "user_c", 25),
            ("2025-03-14T00:00:00", "user_a", 20),  # `until` is excluded
        ],
    )
    await recorded(sessionmaker, f"{community_id}_other", [("2025-03-10T08:00:00", "user_z", 20)])

    days = await analytics(xp, community_id, at("2025-03-10T00:00:00"), at("2025-03-14T00:00:00"))

    assert days == [
        ("2025-03-10", 3, 40, 1),
        ("2025-03-11", 1, 5, 1),
        ("2025-03-12", 0, 0, 0),
        ("2025-03-13", 2, 40, 2),
    ]


async def test_days_are_utc_days_whatever_the_offset_of_the_window(
    xp: Xp, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    # 23:30 on the 10th in New York (UTC-5) is 04:30 on the 11th in UTC.
    await recorded(sessionmaker, community_id, [("2025-03-11T04:30:00", "user_a", 20)])

    days = await analytics(xp, community_id, at("2025-03-10T12:00:00"), at("2025-03-11T12:00:00"))

    assert days == [("2025-03-10", 0, 0, 0), ("2025-03-11", 1, 20, 1)]


async def test_default_window_is_the_last_30_utc_days_with_todays_activity(
    xp: Xp, community_id: str
) -> None:
    for n, user in enumerate(["user_a", "user_a", "user_b"]):
        await xp.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id=user,
                    kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                    source=xp_pb2.SOURCE_WHOP,
                    idempotency_key=f"today-{n}",
                )
            )
        )

    days = await analytics(xp, community_id)

    today = datetime.now(UTC).date()
    assert [day for day, *_ in days] == [
        (today - timedelta(days=n)).isoformat() for n in range(29, -1, -1)
    ]
    assert days[-1] == (today.isoformat(), 3, 60, 2)
    assert all(day[1:] == (0, 0, 0) for day in days[:-1])


async def test_a_window_of_366_days_is_answered(xp: Xp, community_id: str) -> None:
    since = at("2024-01-01T00:00:00")

    days = await analytics(xp, community_id, since, since + timedelta(days=366))

    assert (len(days), days[0][0], days[-1][0]) == (366, "2024-01-01", "2024-12-31")


@pytest.mark.parametrize(
    ("since", "until", "complaint"),
    [
        ("2024-01-01T00:00:00", "2025-01-01T00:00:01", "at most 366 days"),
        ("2025-03-10T00:00:00", "2025-03-10T00:00:00", "before until"),
        ("2025-03-11T00:00:00", "2025-03-10T00:00:00", "before until"),
    ],
)
async def test_a_window_longer_than_366_days_or_reversed_is_invalid(
    xp: Xp, community_id: str, since: str, until: str, complaint: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await analytics(xp, community_id, at(since), at(until))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in (raised.value.details() or "")


async def test_times_outside_the_calendar_are_invalid(xp: Xp, community_id: str) -> None:
    request = xp_pb2.GetAnalyticsRequest(community_id=community_id)
    request.since.seconds = -62_135_596_800 - 86_400  # the day before 0001-01-01

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await xp.GetAnalytics(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_analytics_without_a_community_is_invalid(xp: Xp) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await xp.GetAnalytics(xp_pb2.GetAnalyticsRequest())

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_analytics_count_kinds_new_members_level_ups_and_top_movers(
    make_xp: MakeServicer, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    async with xp.service.transaction() as session:
        config = await xp.service.config_of(session, community_id)
        await xp.service.update_config(
            session,
            community_id,
            replace(config, custom_kinds={"intro": XpRange(25, 25)}),
        )
    for n, (user, kind, custom) in enumerate(
        [
            ("user_a", "message", None),
            ("user_a", "reaction", None),
            ("user_b", "custom", "intro"),
            ("user_b", "message", None),
        ]
    ):
        await xp.batcher.record(
            ActivityInput(
                community_id=community_id,
                user_id=user,
                kind=kind,
                custom_kind=custom,
                source="api",
                idempotency_key=f"analytics-kinds-{n}",
            )
        )
    async with xp.service.transaction() as session:
        await xp.service.adjust_xp(
            session,
            community_id=community_id,
            user_id="user_c",
            delta=300,  # straight to level 3: one level-up entry
            reason="welcome bonus",
            actor="acct_admin",
            idempotency_key="bonus-c",
        )

    reply = await xp.GetAnalytics(
        xp_pb2.GetAnalyticsRequest(community_id=community_id),
        None,  # type: ignore[arg-type]
    )

    today = reply.days[-1]
    assert dict(today.activities_by_kind) == {
        "message": 2,
        "reaction": 1,
        "custom:intro": 1,
    }
    assert (today.new_members, today.level_ups, today.xp) == (3, 1, 20 + 5 + 25 + 20 + 300)
    assert [(m.user_id, m.xp) for m in reply.top_movers] == [
        ("user_c", 300),
        ("user_b", 45),
        ("user_a", 25),
    ]


async def company_analytics(
    xp: Xp, company_id: str, since: datetime, until: datetime
) -> xp_pb2.GetCompanyAnalyticsResponse:
    request = xp_pb2.GetCompanyAnalyticsRequest(company_id=company_id)
    request.since.FromDatetime(since)
    request.until.FromDatetime(until)
    return await xp.GetCompanyAnalytics(request)


async def test_company_analytics_puts_its_communities_side_by_side_and_counts_members_once(
    xp: Xp, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    company_id = f"biz_{community_id[-10:]}"
    main, vip, elsewhere = f"{community_id}_main", f"{community_id}_vip", f"{community_id}_else"
    async with sessionmaker.begin() as session:
        session.add_all(
            [
                Community(community_id=main, company_id=company_id),
                Community(community_id=vip, company_id=company_id),
                Community(community_id=elsewhere, company_id=f"{company_id}_other"),
            ]
        )
    await recorded(
        sessionmaker,
        main,
        [
            ("2025-03-10T10:00:00", "user_a", 20),
            ("2025-03-10T11:00:00", "user_b", 20),
            ("2025-03-11T10:00:00", "user_a", 20),
            ("2025-03-11T11:00:00", "user_c", 0),  # skipped: not an active member
        ],
    )
    await recorded(
        sessionmaker,
        vip,
        [("2025-03-10T12:00:00", "user_a", 50), ("2025-03-11T12:00:00", "user_d", 80)],
    )
    await recorded(sessionmaker, elsewhere, [("2025-03-10T12:00:00", "user_a", 500)])

    reply = await company_analytics(
        xp, company_id, at("2025-03-10T00:00:00"), at("2025-03-12T00:00:00")
    )

    # The top communities first: vip earned 130, main 60; the other company's is not there.
    assert [(c.community_id, c.xp, c.active_members) for c in reply.communities] == [
        (vip, 130, 2),
        (main, 60, 2),
    ]
    assert [(d.day, d.activities, d.xp, d.active_members) for d in reply.communities[1].days] == [
        ("2025-03-10", 2, 40, 2),
        ("2025-03-11", 2, 20, 1),
    ]
    # a, b and d earned; only a in both communities.
    assert (reply.active_members, reply.members_in_several) == (3, 1)
    assert [(m.user_id, m.xp, m.communities) for m in reply.top_movers] == [
        ("user_a", 90, 2),
        ("user_d", 80, 1),
        ("user_b", 20, 1),
    ]


async def test_a_company_xp_has_not_heard_of_has_no_communities(xp: Xp) -> None:
    reply = await company_analytics(
        xp, "biz_unheard", at("2025-03-10T00:00:00"), at("2025-03-12T00:00:00")
    )

    assert (list(reply.communities), reply.active_members, list(reply.top_movers)) == ([], 0, [])


async def test_company_analytics_with_an_invalid_company_id_is_invalid(xp: Xp) -> None:
    request = xp_pb2.GetCompanyAnalyticsRequest(company_id="biz:\x00")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await xp.GetCompanyAnalytics(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
