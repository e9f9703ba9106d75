"""Tiers through the gateway: the plan catalogue, a community's plan (read by owners, set by
platform admins and audited), and analytics gated by plan, against real xp and billing gRPC
servers, Postgres and NATS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core import access_cache
from wee5_gateway.core.cache import TtlCache
from wee5_gateway.db.models import AuditEntry
from wee5_gateway.db.repository import make_platform_admin
from wee5_kit.events import EventBus
from wee5_kit.grpc import GrpcServer, channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
Client = httpx.AsyncClient
PROBLEM = "application/problem+json"
PREMIUM = ["custom_xp_rates", "analytics", "reward_rules", "announcement_templates"]


@pytest.fixture(scope="module")
async def xp_addr(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[str]:
    """A real xp server without cooldown, so every activity earns."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build_xp(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    yield addr
    await server.stop()


async def start_billing() -> tuple[str, GrpcServer]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build_billing(BillingSettings(billing_addr=addr))
    await server.start()
    return addr, server


@pytest.fixture(scope="module")
async def billing_addr(database_url: str, bus: EventBus) -> AsyncIterator[str]:
    addr, server = await start_billing()
    yield addr
    await server.stop()


@pytest.fixture
def settings(xp_addr: str, billing_addr: str) -> GatewaySettings:
    return gateway_settings(xp_addr, billing_addr=billing_addr)


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


@pytest.fixture
async def xp(xp_addr: str) -> AsyncIterator[XpServiceAsyncStub]:
    async with channel(xp_addr) as chan:
        yield xp_pb2_grpc.XpServiceStub(chan)


async def send_activities(xp: XpServiceAsyncStub, community_id: str, users: list[str]) -> None:
    for n, user in enumerate(users):
        await xp.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id=user,
                    kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                    source=xp_pb2.SOURCE_API,
                    idempotency_key=f"tiers-{n}",
                )
            )
        )


async def set_plan_in_billing(billing_addr: str, community_id: str, plan: str) -> None:
    """Straight to billing, as another gateway replica (or later Stripe) would change it."""
    async with channel(billing_addr) as chan:
        stub: BillingServiceAsyncStub = billing_pb2_grpc.BillingServiceStub(chan)
        await stub.SetCommunityPlan(
            billing_pb2.SetCommunityPlanRequest(
                community_id=community_id,
                plan={"premium": billing_pb2.PLAN_PREMIUM, "free": billing_pb2.PLAN_FREE}[plan],
                admin_user_id="ops",
                reason="set by the test",
            )
        )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


async def admin_headers(
    settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> dict[str, str]:
    return bearer(settings, await new_account(sessionmaker, community_id, "admin"))


def analytics_path(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}/analytics"


def plan_path(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}/plan"


async def test_plans_are_listed_without_authentication(gateway: Client) -> None:
    response = await gateway.get("/api/v1/plans")

    assert response.status_code == 200, response.text
    plans = response.json()["plans"]
    assert [(p["plan"], p["features"]) for p in plans] == [
        ("free", []),
        ("premium", PREMIUM),
        ("enterprise", [*PREMIUM, "badges", "multi_community", "cross_community_analytics"]),
    ]
    assert all(p["name"] and p["description"] and p["prices"] == [] for p in plans)


async def test_analytics_on_a_free_community_answers_402_naming_premium(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.get(analytics_path(community_id), headers=headers)

    problem = assert_problem(response, 402)
    assert problem["required_plan"] == "premium"
    assert problem["type"].endswith("/plan-required")
    assert "analytics" in problem["detail"]
    assert "free" in problem["detail"]


async def test_a_free_community_reads_the_last_seven_days_and_three_numbers(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    await send_activities(xp, community_id, ["user_a", "user_a", "user_b"])
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.get(f"{analytics_path(community_id)}/basic", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["days"]) == 7
    assert body["days"][-1] == {
        "day": time.strftime("%Y-%m-%d", time.gmtime()),
        "active_members": 2,
        "xp": 60,
        "new_members": 2,
        "level_ups": 0,
    }
    assert (body["xp"], body["new_members"], body["level_ups"]) == (60, 2, 0)
    # The rest stays premium's.
    assert_problem(await gateway.get(analytics_path(community_id), headers=headers), 402)


async def test_analytics_answers_real_figures_once_a_platform_admin_sets_premium(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    await send_activities(xp, community_id, ["user_a", "user_a", "user_b"])
    headers = await admin_headers(settings, sessionmaker, community_id)
    # Free first: the gateway now holds "free" in its cache for this community.
    assert_problem(await gateway.get(analytics_path(community_id), headers=headers), 402)

    changed = await gateway.put(
        plan_path(community_id),
        json={"plan": "premium", "reason": "pilot customer"},
        headers=bearer(settings, platform_admin=True),
    )
    assert changed.status_code == 200, changed.text
    response = await gateway.get(analytics_path(community_id), headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["community_id"] == community_id
    assert len(body["days"]) == 30
    assert body["days"][-1] == {
        "day": time.strftime("%Y-%m-%d", time.gmtime()),
        "activities": 3,
        "xp": 60,
        "active_members": 2,
        "activities_by_kind": {"message": 3},
        "new_members": 2,
        "level_ups": 0,
    }
    assert all(day["activities"] == 0 for day in body["days"][:-1])
    assert body["top_movers"] == [{"user_id": "user_a", "xp": 40}, {"user_id": "user_b", "xp": 20}]


async def test_analytics_window_is_passed_to_xp_and_bad_windows_are_400(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    await set_plan_in_billing(settings.billing_addr, community_id, "premium")
    headers = await admin_headers(settings, sessionmaker, community_id)

    week = await gateway.get(
        analytics_path(community_id),
        params={"since": "2025-03-10T00:00:00Z", "until": "2025-03-17T00:00:00Z"},
        headers=headers,
    )
    too_long = await gateway.get(
        analytics_path(community_id),
        params={"since": "2024-01-01T00:00:00Z", "until": "2025-06-01T00:00:00Z"},
        headers=headers,
    )

    before_the_calendar = await gateway.get(
        analytics_path(community_id),
        params={"since": "0001-01-01T00:00:00+01:00"},
        headers=headers,
    )

    assert week.status_code == 200, week.text
    assert [day["day"] for day in week.json()["days"]] == [f"2025-03-{n}" for n in range(10, 17)]
    assert "366 days" in assert_problem(too_long, 400)["detail"]
    assert_problem(before_the_calendar, 400)


async def test_analytics_is_refused_to_members_before_the_plan_is_checked(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    member = bearer(settings, await new_account(sessionmaker, community_id, "member"))

    response = await gateway.get(analytics_path(community_id), headers=member)

    assert "required_plan" not in assert_problem(response, 403)


async def test_entitlements_are_served_from_the_cache_within_its_ttl_and_asked_again_after(
    xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    ttl = 2.0
    billing_addr, billing = await start_billing()
    settings = gateway_settings(xp_addr, billing_addr=billing_addr, entitlements_cache_seconds=ttl)
    headers = await admin_headers(settings, sessionmaker, community_id)
    await set_plan_in_billing(billing_addr, community_id, "premium")
    async with serve(settings, headers=headers) as gateway:
        try:
            first = await gateway.get(analytics_path(community_id))
            cached_at = time.monotonic()
        finally:
            await billing.stop()

        within_ttl = await gateway.get(analytics_path(community_id))
        assert time.monotonic() - cached_at < ttl, "billing took too long to stop"
        await asyncio.sleep(ttl - (time.monotonic() - cached_at) + 0.1)
        after_ttl = await gateway.get(analytics_path(community_id))

    assert first.status_code == 200, first.text
    assert within_ttl.status_code == 200, within_ttl.text
    assert_problem(after_ttl, 503)


async def test_gated_route_fails_closed_with_503_when_billing_is_down(
    xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    # gateway_settings points billing at a port nothing listens on.
    settings = gateway_settings(xp_addr)
    headers = await admin_headers(settings, sessionmaker, community_id)
    async with serve(settings, headers=headers) as gateway:
        response = await gateway.get(analytics_path(community_id))

    problem = assert_problem(response, 503)
    assert "required_plan" not in problem


async def test_a_revoked_platform_admin_is_refused_whatever_their_token_says(
    settings: GatewaySettings,
    sessionmaker: Sessions,
    community_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access_cache, "PLATFORM_ADMIN_SECONDS", 0.2)
    admin_id = await new_account(sessionmaker)
    async with sessionmaker.begin() as session:
        await make_platform_admin(await session.connection(), admin_id)
    headers = bearer(settings, admin_id, platform_admin=True)  # valid for 15 minutes
    body = {"plan": "premium", "reason": "pilot"}
    async with serve(settings) as gateway:
        granted = await gateway.put(plan_path(community_id), json=body, headers=headers)
        async with sessionmaker.begin() as session:
            await make_platform_admin(await session.connection(), admin_id, admin=False)
        await asyncio.sleep(0.3)  # the right is believed this long, then asked again
        revoked = await gateway.put(plan_path(community_id), json=body, headers=headers)
        forged = await gateway.put(  # a token claiming it for an account that is not one
            plan_path(community_id),
            json=body,
            headers=bearer(settings, await new_account(sessionmaker), platform_admin=True),
        )

    assert granted.status_code == 200, granted.text
    assert_problem(revoked, 403)
    assert_problem(forged, 403)


async def test_only_platform_admins_may_set_a_plan_and_each_change_is_audited(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    admin_id = await new_account(sessionmaker)
    async with sessionmaker.begin() as session:
        await make_platform_admin(await session.connection(), admin_id)
    platform_admin = bearer(settings, admin_id, platform_admin=True)
    body = {"plan": "premium", "reason": "pilot customer"}

    by_owner = await gateway.put(plan_path(community_id), json=body, headers=owner)
    by_platform_admin = await gateway.put(
        plan_path(community_id), json=body, headers=platform_admin
    )

    assert_problem(by_owner, 403)
    assert by_platform_admin.status_code == 200, by_platform_admin.text
    assert by_platform_admin.json() == {
        "community_id": community_id,
        "plan": "premium",
        "features": PREMIUM,
        "status": "active",
        "previous_plan": "free",
    }
    async with sessionmaker() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.community_id == community_id, AuditEntry.action == "plan.changed"
                )
            )
        ).all()
    assert [(e.actor_account_id, e.target, e.before, e.after) for e in entries] == [
        (
            admin_id,
            f"community:{community_id}",
            {"plan": "free"},
            {"plan": "premium", "reason": "pilot customer"},
        )
    ]
    # The owner sees the new plan (this gateway dropped what it had cached).
    shown = await gateway.get(plan_path(community_id), headers=owner)
    assert shown.json()["plan"] == "premium"


@pytest.mark.parametrize(
    "body",
    [
        {"plan": "gold", "reason": "pilot"},
        {"plan": "premium", "reason": ""},
        {"plan": "premium", "reason": "   "},
        {"plan": "premium"},
    ],
)
async def test_a_plan_change_needs_a_known_plan_and_a_reason(
    gateway: Client, settings: GatewaySettings, community_id: str, body: dict[str, str]
) -> None:
    response = await gateway.put(
        plan_path(community_id), json=body, headers=bearer(settings, platform_admin=True)
    )

    assert_problem(response, 400)


async def test_the_plan_is_shown_to_owners_but_not_to_members(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    member = bearer(settings, await new_account(sessionmaker, community_id, "member"))
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))

    by_member = await gateway.get(plan_path(community_id), headers=member)
    by_owner = await gateway.get(plan_path(community_id), headers=owner)

    assert_problem(by_member, 403)
    assert by_owner.status_code == 200, by_owner.text
    assert by_owner.json() == {
        "community_id": community_id,
        "plan": "free",
        "features": [],
        "status": "active",
    }


async def test_tier_routes_are_documented_with_operation_ids_and_problems(
    gateway: Client,
) -> None:
    schema = (await gateway.get("/schema/openapi.json")).json()
    operations = {
        (method, path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }

    expected = {
        ("get", "/api/v1/plans"): ("listPlans", {"503"}),
        ("get", "/api/v1/communities/{community_id}/plan"): ("getCommunityPlan", {"403"}),
        ("put", "/api/v1/communities/{community_id}/plan"): ("setCommunityPlan", {"400", "403"}),
        ("get", "/api/v1/communities/{community_id}/analytics"): (
            "getCommunityAnalytics",
            {"402", "403", "503"},
        ),
    }
    for key, (operation_id, problems) in expected.items():
        operation = operations[key]
        assert operation["operationId"] == operation_id
        assert problems <= set(operation["responses"]), key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cached_entitlements_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache: TtlCache[str, str] = TtlCache(30, clock=clock)

    cache.put("exp_a", "premium", cache.generation())
    clock.now += 29.9
    within = cache.get("exp_a")
    clock.now += 0.1
    after = cache.get("exp_a")

    assert (within, after) == ("premium", None)


def test_a_read_that_started_before_a_plan_change_does_not_put_the_old_plan_back() -> None:
    cache: TtlCache[str, str] = TtlCache(30, clock=FakeClock())
    generation = cache.generation()  # a read of exp_a starts: billing says "free"

    cache.invalidate("exp_a")  # meanwhile this gateway sets premium
    cache.put("exp_a", "free", generation)  # the read comes back

    assert cache.get("exp_a") is None


def test_the_cache_keeps_at_most_max_entries_dropping_the_oldest() -> None:
    cache: TtlCache[str, int] = TtlCache(30, max_entries=2, clock=FakeClock())

    for n in range(3):
        cache.put(f"exp_{n}", n, cache.generation())

    assert [cache.get(f"exp_{n}") for n in range(3)] == [None, 1, 2]


def test_a_ttl_of_zero_caches_nothing() -> None:
    cache: TtlCache[str, str] = TtlCache(0, clock=FakeClock())

    cache.put("exp_a", "premium", cache.generation())

    assert cache.get("exp_a") is None
