"""A company's analytics across its communities: each community's days side by side (xp's
activity and XP, rewards' grants and their value, benchmarks' participation, resources'
downloads), the members active in several of them, the top communities and the top movers
across them; and the same as CSV.

xp knows which communities belong to the company and answers for all of them in one call;
the other services are asked for the same communities and window, in parallel."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import grpc
import msgspec

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5.resources.v1 import resources_pb2
from wee5.rewards.v1 import rewards_pb2
from wee5.xp.v1 import xp_pb2
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.params import timestamp_param
from wee5_gateway.core.problems import ProblemError

# As xp's community analytics: 30 UTC days up to now unless asked otherwise.
DEFAULT_DAYS = 30


class CompanyDay(msgspec.Struct):
    """One community's UTC day."""

    day: date
    active_members: int
    xp: int
    activities: int
    # "message", "post", "reaction", "custom:<name>".
    activities_by_kind: dict[str, int]
    new_members: int
    level_ups: int
    rewards_granted: int
    # The value of what was granted: free days given, discount codes given and the amount-off
    # codes' value per currency (minor units).
    free_days: int
    discount_codes: int
    amount_off_minor: dict[str, int]
    # Benchmarks submitted for the first time, and by how many members.
    benchmark_submissions: int
    benchmark_members: int
    downloads: int


class CompanyCommunity(msgspec.Struct):
    community_id: str
    # Members who earned in the window (each once) and the XP they earned.
    active_members: int
    xp: int
    # Every UTC day of the window, oldest first.
    days: list[CompanyDay]


class CompanyMover(msgspec.Struct):
    user_id: str
    # XP gained in the window across the company's communities, and in how many of them.
    xp: int
    communities: int


class CompanyAnalytics(msgspec.Struct):
    company_id: str
    since: datetime
    until: datetime
    # Members who earned in the window in any community (each once), and in two or more.
    active_members: int
    members_in_several: int
    # The company's communities, most XP in the window first (the top communities).
    communities: list[CompanyCommunity]
    # Members who gained the most XP across the communities, most first (at most 10).
    top_movers: list[CompanyMover]


def window(
    since: datetime | None, until: datetime | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The [since, until) asked for, with xp's defaults: until now, since the start of the UTC
    day 29 days before until's (times without a zone are UTC)."""
    try:
        until = _utc(until) if until is not None else (now or datetime.now(UTC))
        if since is None:
            start_of_day = datetime.combine(until.date(), datetime.min.time(), UTC)
            return start_of_day - timedelta(days=DEFAULT_DAYS - 1), until
        return _utc(since), until
    except OverflowError:
        raise ProblemError("since and until must fall in the years 1 to 9999") from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def company_analytics(
    downstream: Downstream, company_id: str, since: datetime | None, until: datetime | None
) -> CompanyAnalytics:
    """Everything the services know of the company's communities in the window (the caller
    checked access and the feature)."""
    since, until = window(since, until)
    request = xp_pb2.GetCompanyAnalyticsRequest(company_id=company_id)
    request.since.CopyFrom(timestamp_param(since, "since"))
    request.until.CopyFrom(timestamp_param(until, "until"))
    activity = await downstream.xp.GetCompanyAnalytics(request)
    community_ids = [community.community_id for community in activity.communities]
    rewards, participation, downloads = await asyncio.gather(
        _rewards(downstream, community_ids, request),
        _participation(downstream, community_ids, request),
        _downloads(downstream, community_ids, request),
    )
    return CompanyAnalytics(
        company_id=company_id,
        since=since,
        until=until,
        active_members=activity.active_members,
        members_in_several=activity.members_in_several,
        communities=[
            CompanyCommunity(
                community_id=community.community_id,
                active_members=community.active_members,
                xp=community.xp,
                days=[
                    _day(
                        community.community_id,
                        day,
                        rewards.get((community.community_id, day.day)),
                        participation.get((community.community_id, day.day)),
                        downloads.get((community.community_id, day.day), 0),
                    )
                    for day in community.days
                ],
            )
            for community in activity.communities
        ],
        top_movers=[
            CompanyMover(user_id=m.user_id, xp=m.xp, communities=m.communities)
            for m in activity.top_movers
        ],
    )


def _day(
    community_id: str,
    day: xp_pb2.DailyActivity,
    granted: rewards_pb2.DailyRewards | None,
    submitted: benchmarks_pb2.DailyParticipation | None,
    downloads: int,
) -> CompanyDay:
    granted = granted or rewards_pb2.DailyRewards()
    submitted = submitted or benchmarks_pb2.DailyParticipation()
    return CompanyDay(
        day=date.fromisoformat(day.day),
        active_members=day.active_members,
        xp=day.xp,
        activities=day.activities,
        activities_by_kind=dict(day.activities_by_kind),
        new_members=day.new_members,
        level_ups=day.level_ups,
        rewards_granted=granted.granted,
        free_days=granted.free_days,
        discount_codes=granted.discount_codes,
        amount_off_minor=dict(granted.amount_off_minor),
        benchmark_submissions=submitted.submissions,
        benchmark_members=submitted.members,
        downloads=downloads,
    )


Key = tuple[str, str]  # (community, YYYY-MM-DD)


async def _rewards(
    downstream: Downstream, community_ids: Sequence[str], window: xp_pb2.GetCompanyAnalyticsRequest
) -> dict[Key, rewards_pb2.DailyRewards]:
    if not community_ids:
        return {}
    reply = await downstream.rewards.GetRewardStats(
        rewards_pb2.GetRewardStatsRequest(
            community_ids=community_ids, since=window.since, until=window.until
        )
    )
    return {(d.community_id, d.day): d for d in reply.days}


async def _participation(
    downstream: Downstream, community_ids: Sequence[str], window: xp_pb2.GetCompanyAnalyticsRequest
) -> dict[Key, benchmarks_pb2.DailyParticipation]:
    if not community_ids:
        return {}
    reply = await downstream.benchmarks.GetParticipation(
        benchmarks_pb2.GetParticipationRequest(
            community_ids=community_ids, since=window.since, until=window.until
        )
    )
    return {(d.community_id, d.day): d for d in reply.days}


async def _downloads(
    downstream: Downstream, community_ids: Sequence[str], window: xp_pb2.GetCompanyAnalyticsRequest
) -> dict[Key, int]:
    """Downloads per community and day; a community whose library is off has none."""

    async def of(community_id: str) -> list[tuple[Key, int]]:
        try:
            reply = await downstream.resources.GetResourceStats(
                resources_pb2.GetResourceStatsRequest(
                    community_id=community_id,
                    start_time=window.since,
                    end_time=window.until,
                    top_n=1,
                    page_size=1,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return []  # the library is off
            raise
        return [((community_id, d.date), d.count) for d in reply.downloads_per_day]

    found = await asyncio.gather(*(of(community_id) for community_id in community_ids))
    return dict(pair for pairs in found for pair in pairs)


CSV_COLUMNS = (
    "day",
    "community_id",
    "active_members",
    "xp",
    "activities",
    "activities_by_kind",
    "new_members",
    "level_ups",
    "rewards_granted",
    "free_days",
    "discount_codes",
    "amount_off_minor",
    "benchmark_submissions",
    "benchmark_members",
    "downloads",
)


def as_csv(analytics: CompanyAnalytics) -> str:
    """One row per day and community (days oldest first, communities most XP first); maps as
    `key=value` pairs joined by `;`. Cells a spreadsheet would run as a formula are quoted
    with a leading `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    days = sorted({day.day for community in analytics.communities for day in community.days})
    by_day = {
        (community.community_id, day.day): day
        for community in analytics.communities
        for day in community.days
    }
    for moment in days:
        for community in analytics.communities:
            row = by_day.get((community.community_id, moment))
            if row is None:
                continue
            writer.writerow(
                [
                    moment.isoformat(),
                    _cell(community.community_id),
                    row.active_members,
                    row.xp,
                    row.activities,
                    _cell(_pairs(row.activities_by_kind)),
                    row.new_members,
                    row.level_ups,
                    row.rewards_granted,
                    row.free_days,
                    row.discount_codes,
                    _pairs(row.amount_off_minor),
                    row.benchmark_submissions,
                    row.benchmark_members,
                    row.downloads,
                ]
            )
    return out.getvalue()


def _pairs(values: dict[str, int]) -> str:
    return ";".join(f"{key}={value}" for key, value in sorted(values.items()))


def _cell(text: str) -> str:
    """A text cell that a spreadsheet will not run (custom kinds are named by owners)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
