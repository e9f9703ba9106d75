"""A WEE5 group as a company (issue 20): billing announces each community joining or leaving a
group (`billing.community_group`), xp makes the group the community's company, and the group's
owner reads the company routes of `grp_…` like a Whop company's. Against real xp and billing
gRPC servers (xp consuming billing's events from NATS), the gateway, Postgres and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.gateway.test_company_board import _grant, _message, _problem
from tests.support.faults import eventually
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class World:
    settings: GatewaySettings
    client: httpx.AsyncClient
    xp: XpServiceAsyncStub
    billing: BillingServiceAsyncStub
    # Two Discord servers of one owner (outside Whop).
    first: str
    second: str
    owner: dict[str, str]
    admin_of_both: dict[str, str]
    admin_of_first: dict[str, str]
    member_of_first: dict[str, str]


@pytest.fixture(scope="module")
async def world(
    database_url: str, redis: Redis, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[World]:
    xp_addr, billing_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    # xp consumes billing's stream (billing's server makes it too).
    await bus.ensure_stream("billing")
    xp_server = await build_xp(XpSettings(xp_addr=xp_addr, xp_cooldown_seconds=0))
    billing_server = await build_billing(BillingSettings(billing_addr=billing_addr))
    await xp_server.start()
    await billing_server.start()
    # No shared second and no cached plans or roles: each read shows the change before it.
    settings = gateway_settings(
        xp_addr, billing_addr=billing_addr, shared_read_seconds=0, entitlements_cache_seconds=0
    )
    first, second = (str(10**17 + uuid.uuid4().int % 10**17) for _ in range(2))
    owner = await new_account(sessionmaker, first, "owner")
    await _grant(sessionmaker, owner, second, "owner")
    admin_of_both = await new_account(sessionmaker, first, "admin")
    await _grant(sessionmaker, admin_of_both, second, "admin")
    admin_of_first = await new_account(sessionmaker, first, "admin")
    member_of_first = await new_account(sessionmaker, first, "member", member_user_id="user_a")
    async with (
        channel(xp_addr) as xp_chan,
        channel(billing_addr) as billing_chan,
        serve(settings) as client,
    ):
        yield World(
            settings,
            client,
            xp_pb2_grpc.XpServiceStub(xp_chan),
            billing_pb2_grpc.BillingServiceStub(billing_chan),
            first,
            second,
            bearer(settings, owner),
            bearer(settings, admin_of_both),
            bearer(settings, admin_of_first),
            bearer(settings, member_of_first),
        )
    await billing_server.stop()
    await xp_server.stop()


async def _xp_communities(w: World, company_id: str) -> dict[str, bool]:
    reply = await w.xp.GetCompany(xp_pb2.GetCompanyRequest(company_id=company_id))
    return {c.community_id: c.in_company_board for c in reply.communities}


async def _until_xp_has(w: World, company_id: str, communities: set[str]) -> None:
    """Waits until xp's communities of the company are `communities` (billing's event on its
    way through NATS)."""

    async def reached() -> bool:
        return set(await _xp_communities(w, company_id)) == communities

    await eventually(reached, within=20)


async def _board(w: World, group: str, headers: dict[str, str]) -> httpx.Response:
    return await w.client.get(
        f"/api/v1/companies/{group}/leaderboard", params={"period": "all"}, headers=headers
    )


async def _until_board(w: World, group: str, ranking: list[tuple[int, str, int]]) -> None:
    async def reached() -> bool:
        return _ranking(await _board(w, group, w.owner)) == ranking

    await eventually(reached, within=5, every=0.05)


def _ranking(response: httpx.Response) -> list[tuple[int, str, int]]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return [(e["rank"], e["user_id"], e["xp"]) for e in body["entries"]]


@pytest.fixture(scope="module")
async def grouped(world: World) -> tuple[World, str]:
    """The owner's group with both servers in it, both opted in, members active in both, the
    group on enterprise (a platform admin's assignment to the group covers its communities)."""
    w = world
    created = await w.client.post("/api/v1/groups", json={"name": "My servers"}, headers=w.owner)
    assert created.status_code == 201, created.text
    group: str = created.json()["group_id"]
    for community in (w.first, w.second):
        added = await w.client.put(
            f"/api/v1/groups/{group}/communities/{community}", headers=w.owner
        )
        assert added.status_code == 200, added.text
    await _until_xp_has(w, group, {w.first, w.second})
    for community in (w.first, w.second):
        opted = await w.client.put(
            f"/api/v1/communities/{community}/company-board",
            json={"in_company_board": True},
            headers=w.owner,
        )
        assert opted.status_code == 200, opted.text
        assert opted.json()["company_id"] == group
    for community, user, times in (
        (w.first, "user_a", 2),  # 40
        (w.second, "user_a", 1),  # 20 -> 60 in the group
        (w.second, "user_b", 1),  # 20
    ):
        for _ in range(times):
            await _message(w.xp, community, user)
    await w.billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=group,
            plan=billing_pb2.PLAN_ENTERPRISE,
            admin_user_id="ops",
            reason="set by the test",
        )
    )
    return w, group


async def test_the_groups_owner_reads_the_board_summed_across_its_communities(
    grouped: tuple[World, str],
) -> None:
    w, group = grouped
    assert _ranking(await _board(w, group, w.owner)) == [(1, "user_a", 60), (2, "user_b", 20)]
    card = await w.client.get(f"/api/v1/companies/{group}/members/user_a", headers=w.owner)
    assert card.status_code == 200, card.text
    assert {c["community_id"]: c["xp"] for c in card.json()["communities"]} == {
        w.first: 40,
        w.second: 20,
    }
    # An admin of every community of the group is its admin, as for a Whop company.
    assert _ranking(await _board(w, group, w.admin_of_both))[0] == (1, "user_a", 60)
    # xp's company analytics cover the group's communities like a Whop company's.
    window = xp_pb2.GetCompanyAnalyticsRequest(company_id=group)
    window.since.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    window.until.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    analytics = await w.xp.GetCompanyAnalytics(window)
    assert {c.community_id: c.xp for c in analytics.communities} == {w.first: 40, w.second: 40}
    assert (analytics.active_members, analytics.members_in_several) == (2, 1)


async def test_an_admin_or_member_of_one_community_of_the_group_is_refused(
    grouped: tuple[World, str],
) -> None:
    w, group = grouped
    for headers in (w.admin_of_first, w.member_of_first):
        _problem(await _board(w, group, headers), 403)
        card = await w.client.get(f"/api/v1/companies/{group}/members/user_a", headers=headers)
        _problem(card, 403)
    _problem(await _board(w, group, {}), 401)


async def test_a_community_leaving_the_group_drops_off_its_board_at_once(
    grouped: tuple[World, str],
) -> None:
    w, group = grouped
    left = await w.client.delete(f"/api/v1/groups/{group}/communities/{w.second}", headers=w.owner)
    assert left.status_code == 200, left.text
    await _until_xp_has(w, group, {w.first})
    # No reconcile: xp drops the group's boards as the community leaves (once its change
    # committed: a read just before may still see the old board).
    await _until_board(w, group, [(1, "user_a", 40)])
    setting = await w.client.get(f"/api/v1/communities/{w.second}/company-board", headers=w.owner)
    _problem(setting, 409)
    # Back in the group, it counts again once an admin opts it in again.
    back = await w.client.put(f"/api/v1/groups/{group}/communities/{w.second}", headers=w.owner)
    assert back.status_code == 200, back.text
    await _until_xp_has(w, group, {w.first, w.second})
    assert (await _xp_communities(w, group))[w.second] is False
    assert _ranking(await _board(w, group, w.owner)) == [(1, "user_a", 40)]
    opted = await w.client.put(
        f"/api/v1/communities/{w.second}/company-board",
        json={"in_company_board": True},
        headers=w.owner,
    )
    assert opted.status_code == 200, opted.text
    await _until_board(w, group, [(1, "user_a", 60), (2, "user_b", 20)])
