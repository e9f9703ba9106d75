"""A company's plan through the gateway: Whop communities learn their company from Whop's
signed webhooks (gateway → xp → `xp.community_company` → billing), owners put communities
outside Whop into a WEE5 group, and one enterprise checkout for the company gives every
community of it its features, against real gateway, xp and billing processes in-process,
Postgres, NATS and the Stripe stand-in. The gateway's cached entitlements follow billing's
announcements (its cache is kept for 60 s here, so only the events can refresh it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.billing.test_stripe import stripe_settings
from tests.conftest import free_port
from tests.gateway import test_webhooks as webhooks
from tests.gateway.test_billing import assert_problem, post_webhook, start_checkout
from tests.support.faults import eventually
from tests.support.gateway import SECRET, bearer, gateway_settings, new_account, serve
from tests.support.stripe import FakeStripe, StripeServer, event
from tests.support.whop import chat_message_created, new_id
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.entitlements import Entitlements, Feature, company_entitlements
from wee5_gateway.db.models import AuditEntry, CommunityRole
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub

Client = httpx.AsyncClient
Sessions = async_sessionmaker[AsyncSession]
xp_addr = webhooks.xp_addr
ENTERPRISE_FEATURES = {"badges", "multi_community", "cross_community_analytics"}


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


@pytest.fixture(scope="module")
async def billing_addr(
    database_url: str, bus: EventBus, stripe: FakeStripe, xp_addr: str
) -> AsyncIterator[str]:
    settings = stripe_settings(stripe, billing_addr=f"127.0.0.1:{free_port()}")
    server = await build_billing(settings)
    await server.start()
    yield settings.billing_addr
    await server.stop()


@pytest.fixture(scope="module")
async def billing(billing_addr: str) -> AsyncIterator[BillingServiceAsyncStub]:
    client = channel(billing_addr)
    yield billing_pb2_grpc.BillingServiceStub(client)
    await client.close(None)


@pytest.fixture
def settings(xp_addr: str, billing_addr: str) -> GatewaySettings:
    return gateway_settings(
        xp_addr,
        billing_addr=billing_addr,
        whop_webhook_secret=SECRET,
        entitlements_cache_seconds=60.0,
    )


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


async def owner_of(sessionmaker: Sessions, *communities: str, role: str = "owner") -> uuid.UUID:
    """An account with `role` in each of `communities`."""
    account_id = await new_account(sessionmaker, communities[0], role)
    async with sessionmaker.begin() as session:
        for community in communities[1:]:
            session.add(CommunityRole(community_id=community, account_id=account_id, role=role))
    return account_id


async def whop_says(
    gateway: Client, billing: BillingServiceAsyncStub, community_id: str, company_id: str
) -> None:
    """A Whop webhook from the community naming its company; waits until billing knows."""
    envelope = chat_message_created(community_id, new_id("user"), company_id=company_id)
    delivered = await webhooks.deliver(gateway, envelope)
    assert delivered.status_code in (200, 202), delivered.text

    async def learned() -> bool:
        reply = await billing.GetEntitlements(
            billing_pb2.GetEntitlementsRequest(community_id=community_id)
        )
        return reply.company_id == company_id

    await eventually(learned, within=30)


async def features(gateway: Client, community_id: str, headers: dict[str, str]) -> set[str]:
    response = await gateway.get(f"/api/v1/communities/{community_id}/plan", headers=headers)
    assert response.status_code == 200, response.text
    return set(response.json()["features"])


async def until_features(
    gateway: Client, community_id: str, headers: dict[str, str], *, has: bool
) -> None:
    """Waits until the gateway's view of the community has (or lacks) enterprise's features:
    the cached entry must be dropped by billing's announcement."""

    async def reached() -> bool:
        held = await features(gateway, community_id, headers) >= ENTERPRISE_FEATURES
        return held is has

    await eventually(reached, within=15)


async def pay_enterprise(
    gateway: Client, stripe: FakeStripe, community_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    started = await start_checkout(gateway, community_id, headers, plan="enterprise")
    assert started.status_code == 201, started.text
    session, subscription = stripe.complete_checkout(started.json()["session_id"])
    delivered = await post_webhook(gateway, event("checkout.session.completed", session))
    assert delivered.status_code == 200, delivered.text
    return subscription


async def test_a_whop_companys_enterprise_checkout_covers_its_communities_through_the_gateway(
    gateway: Client,
    settings: GatewaySettings,
    billing: BillingServiceAsyncStub,
    stripe: FakeStripe,
    sessionmaker: Sessions,
) -> None:
    company = new_id("biz")
    chat, vip, courses = new_id("exp"), new_id("exp"), new_id("exp")
    owner = bearer(settings, await owner_of(sessionmaker, chat, vip, courses))
    await whop_says(gateway, billing, chat, company)
    await whop_says(gateway, billing, vip, company)
    # Both cached as free before the company pays.
    for community in (chat, vip):
        assert not ENTERPRISE_FEATURES & await features(gateway, community, owner)

    subscription = await pay_enterprise(gateway, stripe, chat, owner)

    assert subscription["metadata"]["company_id"] == company
    for community in (chat, vip):
        await until_features(gateway, community, owner, has=True)
    # A third experience of the company is covered once Whop names its company; it loses the
    # plan when it turns up in another company.
    await features(gateway, courses, owner)
    await whop_says(gateway, billing, courses, company)
    await until_features(gateway, courses, owner, has=True)
    await whop_says(gateway, billing, courses, new_id("biz"))
    await until_features(gateway, courses, owner, has=False)
    # The company's subscription ends: every community of it drops to free.
    delivered = await post_webhook(
        gateway, event("customer.subscription.deleted", {**subscription, "status": "canceled"})
    )
    assert delivered.status_code == 200, delivered.text
    for community in (chat, vip):
        await until_features(gateway, community, owner, has=False)


async def test_a_premium_community_of_an_enterprise_company_reports_enterprise(
    gateway: Client,
    settings: GatewaySettings,
    billing: BillingServiceAsyncStub,
    stripe: FakeStripe,
    sessionmaker: Sessions,
) -> None:
    company = new_id("biz")
    premium, other = new_id("exp"), new_id("exp")
    owner = bearer(settings, await owner_of(sessionmaker, premium, other))
    started = await start_checkout(gateway, premium, owner, plan="premium")
    session, _ = stripe.complete_checkout(started.json()["session_id"])
    await post_webhook(gateway, event("checkout.session.completed", session))
    await whop_says(gateway, billing, premium, company)
    await whop_says(gateway, billing, other, company)

    await pay_enterprise(gateway, stripe, other, owner)

    async def enterprise() -> bool:
        response = await gateway.get(f"/api/v1/communities/{premium}/plan", headers=owner)
        return bool(response.json()["plan"] == "enterprise")

    await eventually(enterprise, within=15)


async def test_an_owner_groups_communities_outside_whop_under_one_enterprise_plan(
    gateway: Client,
    settings: GatewaySettings,
    billing: BillingServiceAsyncStub,
    stripe: FakeStripe,
    sessionmaker: Sessions,
) -> None:
    first, second, third = (str(10**17 + uuid.uuid4().int % 10**17) for _ in range(3))
    owner_id = await owner_of(sessionmaker, first, second, third)
    owner = bearer(settings, owner_id)

    created = await gateway.post("/api/v1/groups", json={"name": "My servers"}, headers=owner)

    assert created.status_code == 201, created.text
    group = created.json()["group_id"]
    assert created.json() == {"group_id": group, "name": "My servers"}
    for community in (first, second):
        added = await gateway.put(f"/api/v1/groups/{group}/communities/{community}", headers=owner)
        assert added.status_code == 200, added.text
        assert added.json() == {
            "group_id": group,
            "community_id": community,
            "member": True,
            "changed": True,
        }
    again = await gateway.put(f"/api/v1/groups/{group}/communities/{first}", headers=owner)
    assert again.json()["changed"] is False
    await features(gateway, second, owner)  # cached as free

    await pay_enterprise(gateway, stripe, first, owner)

    for community in (first, second):
        await until_features(gateway, community, owner, has=True)
    # What company routes ask of the gateway (core.entitlements.company_entitlements).
    fresh = Entitlements(billing, ttl=0)
    covered = await fresh.of(second)
    assert (covered.plan, covered.company_id, covered.company_plan) == (
        "enterprise",
        group,
        "enterprise",
    )
    held = await company_entitlements(fresh, group)
    assert held.has(Feature.MULTI_COMMUNITY)
    assert (held.plan, held.kind, held.owner_account_id, set(held.community_ids)) == (
        "enterprise",
        "group",
        str(owner_id),
        {first, second},
    )
    # A third community joins the group: covered; it leaves: not.
    assert not ENTERPRISE_FEATURES & await features(gateway, third, owner)
    await gateway.put(f"/api/v1/groups/{group}/communities/{third}", headers=owner)
    await until_features(gateway, third, owner, has=True)
    left = await gateway.delete(f"/api/v1/groups/{group}/communities/{third}", headers=owner)
    assert left.status_code == 200, left.text
    assert left.json()["member"] is False
    await until_features(gateway, third, owner, has=False)

    async with sessionmaker() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target == f"group:{group}")
                .order_by(AuditEntry.id)
            )
        )
    assert [(a.action, a.community_id, a.actor_account_id, a.status) for a in audit] == [
        ("group.created", None, owner_id, "done"),
        ("group.community_added", first, owner_id, "done"),
        ("group.community_added", second, owner_id, "done"),
        ("group.community_added", third, owner_id, "done"),
        ("group.community_removed", third, owner_id, "done"),
    ]


async def test_only_owners_of_both_the_group_and_the_community_change_a_group(
    gateway: Client,
    settings: GatewaySettings,
    billing: BillingServiceAsyncStub,
    sessionmaker: Sessions,
) -> None:
    inside, outside = str(10**17 + uuid.uuid4().int % 10**17), new_id("guild")
    owner = bearer(settings, await owner_of(sessionmaker, inside))
    group = (await gateway.post("/api/v1/groups", json={"name": "G"}, headers=owner)).json()[
        "group_id"
    ]
    path = f"/api/v1/groups/{group}/communities"
    member = bearer(settings, await new_account(sessionmaker, inside, "member"))
    admin_elsewhere = bearer(settings, await new_account(sessionmaker, outside, "admin"))
    owner_elsewhere = bearer(settings, await new_account(sessionmaker, outside, "owner"))

    # 401 first, whatever else is wrong.
    assert_problem(await gateway.post("/api/v1/groups", json={"name": "G"}), 401)
    assert_problem(await gateway.put(f"{path}/{inside}"), 401)
    assert_problem(await gateway.put("/api/v1/groups/nope/communities/bad id"), 401)
    assert_problem(await gateway.delete(f"{path}/{inside}"), 401)
    # A member of the group's community, an admin of a community outside it: 403.
    assert_problem(await gateway.put(f"{path}/{inside}", headers=member), 403)
    assert_problem(await gateway.put(f"{path}/{outside}", headers=admin_elsewhere), 403)
    assert_problem(await gateway.delete(f"{path}/{inside}", headers=admin_elsewhere), 403)
    # The owner of another community is not the group's owner.
    refused = assert_problem(await gateway.put(f"{path}/{outside}", headers=owner_elsewhere), 403)
    assert refused["type"].endswith("not-the-group-owner")
    # Malformed input is a 4xx naming what is wrong; a Whop community cannot join.
    assert_problem(
        await gateway.put(f"/api/v1/groups/nope/communities/{inside}", headers=owner), 400
    )
    missing = await gateway.put(
        f"/api/v1/groups/grp_{'0' * 24}/communities/{inside}", headers=owner
    )
    assert_problem(missing, 404)
    assert_problem(await gateway.post("/api/v1/groups", json={"name": ""}, headers=owner), 400)
    whop_community = new_id("exp")
    whop_owner = bearer(settings, await owner_of(sessionmaker, inside, whop_community))
    mine = (await gateway.post("/api/v1/groups", json={"name": "W"}, headers=whop_owner)).json()
    await whop_says(gateway, billing, whop_community, new_id("biz"))
    conflict = await gateway.put(
        f"/api/v1/groups/{mine['group_id']}/communities/{whop_community}", headers=whop_owner
    )
    assert assert_problem(conflict, 409)["type"].endswith("in-whop-company")
