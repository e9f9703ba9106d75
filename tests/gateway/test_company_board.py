"""The company board (issue 20): members ranked across the communities of one Whop company
that opted in, by their summed XP, with a per-community breakdown on the card; who may read
it; the enterprise gate; rebuilt by reconcile. Against real xp and billing gRPC servers, the
gateway, Postgres, Redis and NATS, and `python -m wee5_xp.tasks reconcile` as a process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from tests.xp.support_tasks import run_task_process
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry, CommunityRole
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
PROBLEM = "application/problem+json"


@dataclass
class Company:
    id: str
    # counted (opted in): communities[0], communities[1]; communities[2] never opts in
    communities: list[str]
    admin_of_all: dict[str, str]
    admin_of_first: dict[str, str]
    member_of_first: dict[str, str]


@dataclass
class World:
    settings: GatewaySettings
    sessions: Sessions
    client: httpx.AsyncClient
    xp: XpServiceAsyncStub
    billing: BillingServiceAsyncStub
    company: Company
    # another company, with one community and its admin
    other_company: str
    admin_of_other: dict[str, str]


@pytest.fixture(scope="module")
async def world(
    database_url: str, redis: Redis, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[World]:
    xp_addr, billing_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    xp_server = await build_xp(XpSettings(xp_addr=xp_addr, xp_cooldown_seconds=0))
    billing_server = await build_billing(BillingSettings(billing_addr=billing_addr))
    await xp_server.start()
    await billing_server.start()
    # No shared second and no cached plans: each read shows the change before it.
    settings = gateway_settings(
        xp_addr,
        billing_addr=billing_addr,
        shared_read_seconds=0,
        entitlements_cache_seconds=0,
    )
    tag = uuid.uuid4().hex[:8]
    company_id = f"biz_{tag}"
    communities = [f"exp_{tag}_{n}" for n in range(3)]
    other_company, other_community = f"biz_{tag}_other", f"exp_{tag}_other"
    admin_of_all = await new_account(sessionmaker, communities[0], "owner")
    for community_id in communities[1:]:
        await _grant(sessionmaker, admin_of_all, community_id, "admin")
    admin_of_first = await new_account(sessionmaker, communities[0], "admin")
    member_of_first = await new_account(
        sessionmaker, communities[0], "member", member_user_id="user_x"
    )
    admin_of_other = await new_account(sessionmaker, other_community, "admin")
    async with channel(xp_addr) as xp_chan, channel(billing_addr) as billing_chan:
        xp: XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(xp_chan)
        billing: BillingServiceAsyncStub = billing_pb2_grpc.BillingServiceStub(billing_chan)
        # xp learns each community's company from the activities' envelopes.
        for community_id in communities:
            await _message(xp, community_id, "user_seed", company_id)
        await _message(xp, other_community, "user_seed", other_company)
        async with serve(settings) as client:
            yield World(
                settings,
                sessionmaker,
                client,
                xp,
                billing,
                Company(
                    company_id,
                    communities,
                    bearer(settings, admin_of_all),
                    bearer(settings, admin_of_first),
                    bearer(settings, member_of_first),
                ),
                other_company,
                bearer(settings, admin_of_other),
            )
    await billing_server.stop()
    await xp_server.stop()


async def _grant(sessions: Sessions, account_id: uuid.UUID, community_id: str, role: str) -> None:
    async with sessions.begin() as session:
        session.add(CommunityRole(account_id=account_id, community_id=community_id, role=role))


async def _message(
    xp: XpServiceAsyncStub, community_id: str, user_id: str, company_id: str = ""
) -> xp_pb2.RecordActivityResponse:
    reply: xp_pb2.RecordActivityResponse = await xp.RecordActivity(
        xp_pb2.RecordActivityRequest(
            activity=xp_pb2.Activity(
                community_id=community_id,
                user_id=user_id,
                kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                source=xp_pb2.SOURCE_WHOP,
                idempotency_key=f"evt_{uuid.uuid4().hex}",
                company_id=company_id,
                content_length=40,
                profile=xp_pb2.Profile(display_name=f"Name of {user_id}"),
            )
        )
    )
    assert reply.outcome == xp_pb2.ACTIVITY_OUTCOME_AWARDED
    return reply


async def _enterprise(w: World, plan: str = "enterprise") -> None:
    """The company's own plan (a platform admin's assignment: it covers every community)."""
    await w.billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=w.company.id,
            plan={
                "enterprise": billing_pb2.PLAN_ENTERPRISE,
                "premium": billing_pb2.PLAN_PREMIUM,
                "free": billing_pb2.PLAN_FREE,
            }[plan],
            admin_user_id="ops",
            reason="set by the test",
        )
    )


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    return problem


async def _opt(w: World, community_id: str, value: bool) -> httpx.Response:
    return await w.client.put(
        f"/api/v1/communities/{community_id}/company-board",
        json={"in_company_board": value},
        headers=w.company.admin_of_all,
    )


async def _read_board(w: World, period: str = "all", **params: Any) -> dict[str, Any]:
    response = await w.client.get(
        f"/api/v1/companies/{w.company.id}/leaderboard",
        params={"period": period, **params},
        headers=w.company.admin_of_all,
    )
    assert response.status_code == 200, response.text
    board: dict[str, Any] = response.json()
    return board


async def _board(w: World, period: str = "all", **params: Any) -> dict[str, Any]:
    """The board once Redis has it whole (a board dropped or never loaded is read from
    Postgres, `updating`, while it is rebuilt in the background): each answer on the way
    must rank the same."""
    answers = [await _read_board(w, period, **params)]
    while answers[-1]["updating"] and len(answers) < 100:
        await asyncio.sleep(0.05)
        answers.append(await _read_board(w, period, **params))
    assert not answers[-1]["updating"], "the board was never rebuilt in Redis"
    assert all(_ranking(a) == _ranking(answers[-1]) for a in answers), answers
    return answers[-1]


def _ranking(board: dict[str, Any]) -> list[tuple[int, str, int]]:
    return [(e["rank"], e["user_id"], e["xp"]) for e in board["entries"]]


@pytest.fixture(scope="module")
async def played(world: World) -> World:
    """Communities 0 and 1 opted in, 2 not; user_x active in all three, user_y in 0 only,
    user_z only in the one that does not count. The company is on enterprise."""
    w = world
    first, second, third = w.company.communities
    for community_id in (first, second):
        response = await _opt(w, community_id, True)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "community_id": community_id,
            "company_id": w.company.id,
            "in_company_board": True,
        }
    for community_id, user_id, times in (
        (first, "user_x", 2),  # 40
        (second, "user_x", 1),  # 20 -> 60 in the company
        (first, "user_y", 2),  # 40
        (third, "user_x", 5),  # never counted
        (third, "user_z", 9),  # 180, never counted
    ):
        for _ in range(times):
            await _message(w.xp, community_id, user_id)
    await _enterprise(w)
    return w


async def test_a_member_active_in_two_communities_ranks_by_their_sum(played: World) -> None:
    board = await _board(played)
    # user_seed earned 20 in each community: 40 in the two counted ones, reached before
    # user_y's 40 (ties go to who reached the score first).
    assert _ranking(board) == [(1, "user_x", 60), (2, "user_seed", 40), (3, "user_y", 40)]
    assert board["total"] == 3
    assert board["company_id"] == played.company.id
    assert board["entries"][0]["display_name"] == "Name of user_x"
    assert board["updating"] is False


async def test_the_board_pages_like_a_community_board(played: World) -> None:
    first = await _board(played, limit=2)
    assert _ranking(first) == [(1, "user_x", 60), (2, "user_seed", 40)]
    assert first["next_cursor"]
    rest = await _board(played, limit=2, cursor=first["next_cursor"])
    assert _ranking(rest) == [(3, "user_y", 40)]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("period", ["day", "week", "month"])
async def test_period_boards_sum_the_periods_of_today(played: World, period: str) -> None:
    board = await _board(played, period)
    assert _ranking(board) == [(1, "user_x", 60), (2, "user_seed", 40), (3, "user_y", 40)]
    today = datetime.now(UTC).date()
    start = {
        "day": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
    }[period]
    assert board["period_start"] == start.isoformat()


async def test_the_card_gives_the_total_rank_and_each_community(played: World) -> None:
    first, second, third = played.company.communities
    response = await played.client.get(
        f"/api/v1/companies/{played.company.id}/members/user_x",
        headers=played.company.admin_of_all,
    )
    assert response.status_code == 200, response.text
    card = response.json()
    assert (card["xp"], card["rank"]) == (60, 1)
    assert (card["periods"]["week"]["xp"], card["periods"]["week"]["rank"]) == (60, 1)
    assert {c["community_id"]: (c["xp"], c["in_company_board"]) for c in card["communities"]} == {
        first: (40, True),
        second: (20, True),
        third: (100, False),
    }


async def test_a_member_only_in_a_community_that_did_not_opt_in_is_not_found(
    played: World,
) -> None:
    response = await played.client.get(
        f"/api/v1/companies/{played.company.id}/members/user_z",
        headers=played.company.admin_of_all,
    )
    _problem(response, 404)


async def test_a_community_that_opts_out_stops_counting_and_the_change_is_audited(
    played: World,
) -> None:
    second = played.company.communities[1]
    response = await _opt(played, second, False)
    assert response.status_code == 200, response.text
    try:
        board = await _board(played)
        # user_x's 20 XP of the second community are gone; ties go to who reached it first.
        assert sorted((e["user_id"], e["xp"]) for e in board["entries"]) == [
            ("user_seed", 20),
            ("user_x", 40),
            ("user_y", 40),
        ]
        week = await _board(played, "week")
        assert dict((e["user_id"], e["xp"]) for e in week["entries"])["user_x"] == 40
    finally:
        assert (await _opt(played, second, True)).status_code == 200
    assert _ranking(await _board(played))[0] == (1, "user_x", 60)
    async with played.sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.community_id == second,
                    AuditEntry.action == "company_board.changed",
                )
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(e.before, e.after) for e in entries][-2:] == [
        ({"in_company_board": True}, {"in_company_board": False}),
        ({"in_company_board": False}, {"in_company_board": True}),
    ]


async def test_the_opt_in_is_off_until_an_admin_turns_it_on(played: World) -> None:
    third = played.company.communities[2]
    response = await played.client.get(
        f"/api/v1/communities/{third}/company-board", headers=played.company.admin_of_all
    )
    assert response.status_code == 200, response.text
    assert response.json()["in_company_board"] is False
    # A plain member may read it, not change it.
    response = await played.client.put(
        f"/api/v1/communities/{played.company.communities[0]}/company-board",
        json={"in_company_board": False},
        headers=played.company.member_of_first,
    )
    _problem(response, 403)


async def test_a_community_whose_company_xp_does_not_know_is_a_409(played: World) -> None:
    lonely = f"exp_{uuid.uuid4().hex[:10]}"
    account = await new_account(played.sessions, lonely, "admin")
    response = await played.client.put(
        f"/api/v1/communities/{lonely}/company-board",
        json={"in_company_board": True},
        headers=bearer(played.settings, account),
    )
    _problem(response, 409)


@pytest.mark.parametrize("route", ["leaderboard", "members/user_x"])
async def test_who_may_read_the_company_routes(played: World, route: str) -> None:
    url = f"/api/v1/companies/{played.company.id}/{route}"
    _problem(await played.client.get(url), 401)
    # An admin of one community of the company only, a plain member, an admin elsewhere.
    for headers in (
        played.company.admin_of_first,
        played.company.member_of_first,
        played.admin_of_other,
    ):
        _problem(await played.client.get(url, headers=headers), 403)
    platform = bearer(played.settings, platform_admin=True)
    assert (await played.client.get(url, headers=platform)).status_code == 200
    assert (await played.client.get(url, headers=played.company.admin_of_all)).status_code == 200


async def test_an_admin_of_another_company_sees_nothing_of_this_one(played: World) -> None:
    # The admin of the other company's community, asking for their own company: allowed
    # through the access check (402: it is not on enterprise), never this company's data.
    own = await played.client.get(
        f"/api/v1/companies/{played.other_company}/leaderboard", headers=played.admin_of_other
    )
    _problem(own, 402)
    theirs = await played.client.get(
        f"/api/v1/companies/{played.company.id}/leaderboard", headers=played.admin_of_other
    )
    _problem(theirs, 403)


async def test_without_multi_community_the_company_routes_are_402(played: World) -> None:
    # Community 0 on enterprise by itself does not make its company enterprise.
    first = played.company.communities[0]
    await played.billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=first,
            plan=billing_pb2.PLAN_ENTERPRISE,
            admin_user_id="ops",
            reason="set by the test",
        )
    )
    await _enterprise(played, "premium")
    try:
        for route in ("leaderboard", "members/user_x"):
            response = await played.client.get(
                f"/api/v1/companies/{played.company.id}/{route}",
                headers=played.company.admin_of_all,
            )
            problem = _problem(response, 402)
            assert problem["required_plan"] == "enterprise"
    finally:
        await _enterprise(played)
    assert (await _board(played))["total"] == 3


@pytest.mark.parametrize("company_id", ["biz$bad", "b" * 65, "biz_%20space", "biz.dot"], ids=str)
async def test_a_bad_company_id_is_a_400(played: World, company_id: str) -> None:
    response = await played.client.get(
        f"/api/v1/companies/{company_id}/leaderboard", headers=played.company.admin_of_all
    )
    problem = _problem(response, 400)
    assert "company id" in problem["detail"]


async def test_a_bad_company_id_without_credentials_is_401_first(played: World) -> None:
    _problem(await played.client.get("/api/v1/companies/biz$bad/leaderboard"), 401)


async def test_an_award_moves_the_company_board_in_redis_at_once(played: World) -> None:
    """The award path writes the company boards with the community boards: a board already
    whole in Redis shows the new sum on the next read, not after a rebuild."""
    settled = await _board(played, "week")
    assert dict((e["user_id"], e["xp"]) for e in settled["entries"])["user_y"] == 40
    await _message(played.xp, played.company.communities[1], "user_y")
    await _message(played.xp, played.company.communities[1], "user_y")
    for period in ("all", "week"):
        board = await _read_board(played, period)
        assert board["updating"] is False
        assert _ranking(board) == [(1, "user_y", 80), (2, "user_x", 60), (3, "user_seed", 40)]


async def test_reconcile_rebuilds_the_deleted_boards_the_same(
    played: World, redis: Redis, test_env: dict[str, str]
) -> None:
    periods = ("all", "day", "week", "month")
    before = {period: _ranking(await _board(played, period)) for period in periods}
    prefix = f"{test_env['WEE5_REDIS_PREFIX']}:cb:{played.company.id}:"
    deleted = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    assert deleted, "the company boards are kept in Redis"
    await redis.delete(*deleted)
    # Meanwhile readers get the same board from Postgres (and a rebuild starts).
    missing = await _read_board(played, "week")
    assert missing["updating"] is True
    assert _ranking(missing) == before["week"]
    await redis.delete(*[key async for key in redis.scan_iter(match=f"{prefix}*")])
    finished = await run_task_process(test_env, "reconcile")
    assert finished.code == 0, finished.stderr
    keys = {key async for key in redis.scan_iter(match=f"{prefix}*")}
    assert {f"{prefix}all", f"{prefix}week:" + str(_week_start())} <= keys
    boards = {period: await _read_board(played, period) for period in periods}
    assert {period: _ranking(board) for period, board in boards.items()} == before
    assert not any(board["updating"] for board in boards.values())


def _week_start() -> str:
    today = datetime.now(UTC).date()
    return (today - timedelta(days=today.weekday())).isoformat()
