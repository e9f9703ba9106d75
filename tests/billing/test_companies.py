"""A company's plan: communities learn their Whop company from xp's `xp.community_company`
events (or join an owner's WEE5 group), one enterprise subscription of the company covers all
its communities, and a community's own enterprise subscription moves to its company when it
joins one. Real billing gRPC server, Postgres, NATS, and the Stripe stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.billing.test_stripe import checkout, deliver, entitlements, stripe_settings
from tests.conftest import free_port
from tests.support.faults import eventually
from tests.support.stripe import FakeStripe, StripeServer, event, subscription_object
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.events.v1 import events_pb2
from wee5_billing.config import BillingSettings
from wee5_billing.models import Subscription, SubscriptionChange, outbox
from wee5_billing.server import build
from wee5_billing.tasks import billing_checks
from wee5_kit.events import EventBus, new_meta
from wee5_kit.grpc import channel

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Billing

Sessions = async_sessionmaker[AsyncSession]
ENTERPRISE = billing_pb2.PLAN_ENTERPRISE
PREMIUM = billing_pb2.PLAN_PREMIUM
FREE = billing_pb2.PLAN_FREE
M = TypeVar("M", events_pb2.SubscriptionChanged, events_pb2.CommunityGroup)


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def settings(stripe: FakeStripe) -> BillingSettings:
    return stripe_settings(stripe, billing_addr=f"127.0.0.1:{free_port()}")


@pytest.fixture(scope="module")
async def billing(
    database_url: str, bus: EventBus, settings: BillingSettings
) -> AsyncIterator[Billing]:
    # xp owns its stream; billing's consumer waits for it.
    await bus.ensure_stream("xp")
    server = await build(settings)
    await server.start()
    client = channel(settings.billing_addr)
    try:
        yield billing_pb2_grpc.BillingServiceStub(client)
    finally:
        await client.close(None)
        await server.stop()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def publish_company(
    bus: EventBus, community_id: str, company_id: str, at: datetime | None = None
) -> None:
    """What xp publishes when a Whop envelope names the community's company."""
    message = events_pb2.CommunityCompany(meta=new_meta(community_id), company_id=company_id)
    if at is not None:
        message.meta.occurred_at.FromDatetime(at)
    await bus.publish(
        bus.subject("xp.community_company"), message.SerializeToString(), message.meta.event_id
    )


async def xp_says(bus: EventBus, billing: Billing, community_id: str, company_id: str) -> None:
    """`publish_company`, waiting until billing took it in."""
    await publish_company(bus, community_id, company_id)

    async def learned() -> bool:
        return (await entitlements(billing, community_id)).company_id == company_id

    await eventually(learned, within=20)


async def pay(
    billing: Billing, stripe: FakeStripe, community_id: str, plan: Any = ENTERPRISE
) -> dict[str, Any]:
    started = await checkout(billing, community_id, plan=plan)
    session, subscription = stripe.complete_checkout(started.session_id)
    await deliver(billing, event("checkout.session.completed", session))
    return subscription


async def plan_of(billing: Billing, community_id: str) -> tuple[int, set[str]]:
    reply = await entitlements(billing, community_id)
    return reply.plan, set(reply.features)


async def queued(sessions: Sessions, subject: str, message_type: type[M]) -> list[M]:
    """The events billing's outbox holds on `subject`, in order."""
    async with sessions() as session:
        payloads = await session.scalars(
            select(outbox.c.payload).where(outbox.c.subject == subject).order_by(outbox.c.id)
        )
        return [message_type.FromString(p) for p in payloads]


async def announced(sessions: Sessions, community_id: str) -> list[events_pb2.SubscriptionChanged]:
    events = await queued(sessions, "billing.subscription.changed", events_pb2.SubscriptionChanged)
    return [e for e in events if e.meta.community_id == community_id]


async def grouped(sessions: Sessions, community_id: str) -> list[str]:
    """The groups `billing.community_group` announced for the community ('' : it left)."""
    events = await queued(sessions, "billing.community_group", events_pb2.CommunityGroup)
    return [e.group_id for e in events if e.meta.community_id == community_id]


async def test_a_companys_enterprise_checkout_covers_every_community_of_it(
    billing: Billing, bus: EventBus, stripe: FakeStripe, sessionmaker: Sessions
) -> None:
    company = new_id("biz")
    first, second, third = new_id("exp"), new_id("exp"), new_id("exp")
    await xp_says(bus, billing, first, company)
    await xp_says(bus, billing, second, company)

    subscription = await pay(billing, stripe, first)

    assert subscription["metadata"]["company_id"] == company
    for community in (first, second):
        plan, features = await plan_of(billing, community)
        assert plan == ENTERPRISE
        assert {"badges", "multi_community", "cross_community_analytics"} <= features
        assert announced_plans(await announced(sessionmaker, community))[-1] == (
            "enterprise",
            company,
        )
    held = await billing.GetCompanyEntitlements(
        billing_pb2.GetCompanyEntitlementsRequest(company_id=company)
    )
    assert (held.plan, held.kind, list(held.community_ids)) == (
        ENTERPRISE,
        billing_pb2.COMPANY_KIND_WHOP,
        sorted([first, second]),
    )
    # One subscription per company: a second enterprise checkout from another community is
    # refused, as for a community that has one.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await checkout(billing, second, plan=ENTERPRISE)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "this company already has" in (refused.value.details() or "")

    # A third community joins the company: covered; it moves to another company: not.
    assert (await plan_of(billing, third))[0] == FREE
    await xp_says(bus, billing, third, company)
    assert "badges" in (await plan_of(billing, third))[1]
    await xp_says(bus, billing, third, new_id("biz"))
    assert await plan_of(billing, third) == (FREE, set())
    assert [e.plan for e in await announced(sessionmaker, third)] == ["enterprise", "free", "free"]

    # The subscription ends in Stripe: every community of the company drops to free.
    canceled = {**subscription, "status": "canceled"}
    await deliver(billing, event("customer.subscription.deleted", canceled))
    for community in (first, second):
        assert await plan_of(billing, community) == (FREE, set())
        assert announced_plans(await announced(sessionmaker, community))[-1] == ("free", company)


def announced_plans(events: list[events_pb2.SubscriptionChanged]) -> list[tuple[str, str]]:
    return [(e.plan, e.company_id) for e in events]


async def test_an_older_company_event_never_moves_a_community_back(
    billing: Billing, bus: EventBus
) -> None:
    company, older, community, witness = new_id("biz"), new_id("biz"), new_id("exp"), new_id("exp")
    await xp_says(bus, billing, community, company)

    # A redelivery of what xp said an hour before, then a later event billing waits for.
    await publish_company(bus, community, older, at=datetime.now(UTC) - timedelta(hours=1))
    await xp_says(bus, billing, witness, company)

    assert (await entitlements(billing, community)).company_id == company


async def test_a_premium_community_of_an_enterprise_company_reports_enterprise(
    billing: Billing, bus: EventBus, stripe: FakeStripe
) -> None:
    company = new_id("biz")
    premium, other = new_id("exp"), new_id("exp")
    await pay(billing, stripe, premium, plan=PREMIUM)
    await xp_says(bus, billing, premium, company)
    await xp_says(bus, billing, other, company)
    assert (await plan_of(billing, premium))[0] == PREMIUM

    # Its owner buys enterprise for the company from it: allowed beside its own premium.
    await pay(billing, stripe, premium)

    assert (await plan_of(billing, other))[0] == ENTERPRISE
    reply = await entitlements(billing, premium)
    assert (reply.plan, reply.company_plan, reply.company_id) == (ENTERPRISE, ENTERPRISE, company)
    assert "badges" in reply.features
    # Its own premium subscription is still its own.
    own = await billing.GetSubscription(billing_pb2.GetSubscriptionRequest(community_id=premium))
    assert own.subscription.plan == PREMIUM


async def test_a_communitys_own_enterprise_subscription_moves_to_its_company(
    billing: Billing, bus: EventBus, stripe: FakeStripe, sessionmaker: Sessions
) -> None:
    """The migration of per-community enterprise subscriptions: when billing learns a
    community's company and the company holds none, the community's subscription becomes the
    company's; later Stripe events of it keep applying to the company."""
    company, lonely_company = new_id("biz"), new_id("biz")
    paying, sibling, alone = new_id("exp"), new_id("exp"), new_id("exp")
    subscription = await pay(billing, stripe, paying)
    kept = await pay(billing, stripe, alone)
    assert "company_id" not in subscription["metadata"]

    await xp_says(bus, billing, paying, company)
    await xp_says(bus, billing, sibling, company)

    async with sessionmaker() as session:
        rows = {
            row.community_id: row
            for row in await session.scalars(
                select(Subscription).where(
                    Subscription.stripe_subscription_id.in_([subscription["id"], kept["id"]])
                )
            )
        }
        history = list(
            await session.scalars(
                select(SubscriptionChange).where(SubscriptionChange.source == "company")
            )
        )
    moved = rows[company]
    assert (moved.holder, moved.owner_community_id, moved.plan) == ("company", paying, "enterprise")
    assert paying not in rows
    assert {paying, company} <= {h.community_id for h in history}
    for community in (paying, sibling):
        assert (await plan_of(billing, community))[0] == ENTERPRISE
    # Stripe's metadata still names the community; the event applies to the company's row.
    past_due = {**subscription, "status": "past_due"}
    await deliver(billing, event("customer.subscription.updated", past_due))
    async with sessionmaker() as session:
        statuses = {
            row.community_id: row.status
            for row in await session.scalars(
                select(Subscription).where(
                    Subscription.stripe_subscription_id == subscription["id"]
                )
            )
        }
    assert statuses == {company: "past_due"}
    # A community whose company has none stays as it is until it joins one.
    assert (await plan_of(billing, alone))[0] == ENTERPRISE
    await xp_says(bus, billing, alone, lonely_company)
    async with sessionmaker() as session:
        holder = await session.scalar(
            select(Subscription.community_id).where(
                Subscription.stripe_subscription_id == kept["id"]
            )
        )
    assert holder == lonely_company


async def test_the_daily_checks_move_an_enterprise_upgrade_of_a_community_to_its_company(
    billing: Billing,
    bus: EventBus,
    stripe: FakeStripe,
    settings: BillingSettings,
    sessionmaker: Sessions,
) -> None:
    """A community of a company upgraded its own premium subscription to enterprise in the
    billing portal: the daily checks make it the company's."""
    company, community, sibling = new_id("biz"), new_id("exp"), new_id("exp")
    premium = await pay(billing, stripe, community, plan=PREMIUM)
    await xp_says(bus, billing, community, company)
    await xp_says(bus, billing, sibling, company)
    upgraded = subscription_object(
        customer=premium["customer"],
        price="price_enterprise_monthly",
        metadata=premium["metadata"],
        subscription_id=premium["id"],
    )
    stripe.subscriptions[premium["id"]] = upgraded
    await deliver(billing, event("customer.subscription.updated", upgraded))
    assert (await plan_of(billing, sibling))[0] == FREE

    report = await billing_checks(settings)

    assert {"community_id": community, "company_id": company} in report.moved_to_companies
    async with sessionmaker() as session:
        holder = await session.scalar(
            select(Subscription.community_id).where(
                Subscription.stripe_subscription_id == premium["id"]
            )
        )
    assert holder == company
    assert (await plan_of(billing, sibling))[0] == ENTERPRISE


async def test_a_company_with_a_subscription_keeps_a_joining_communitys_own(
    billing: Billing, bus: EventBus, stripe: FakeStripe, sessionmaker: Sessions
) -> None:
    company = new_id("biz")
    first, joining = new_id("exp"), new_id("exp")
    await xp_says(bus, billing, first, company)
    await pay(billing, stripe, first)
    own = await pay(billing, stripe, joining)

    await xp_says(bus, billing, joining, company)

    async with sessionmaker() as session:
        holder = await session.scalar(
            select(Subscription.community_id).where(
                Subscription.stripe_subscription_id == own["id"]
            )
        )
    assert holder == joining


async def test_an_owner_puts_communities_into_a_group_they_own(
    billing: Billing,
    bus: EventBus,
    stripe: FakeStripe,
    settings: BillingSettings,
    sessionmaker: Sessions,
) -> None:
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = new_id("guild"), new_id("guild")
    group = await billing.CreateGroup(
        billing_pb2.CreateGroupRequest(owner_account_id=owner, name="  My servers ")
    )
    assert group.group_id.startswith("grp_")
    assert group.name == "My servers"

    async def put(community: str, caller: str, member: bool = True) -> bool:
        reply = await billing.SetGroupCommunity(
            billing_pb2.SetGroupCommunityRequest(
                group_id=group.group_id,
                community_id=community,
                owner_account_id=caller,
                member=member,
            )
        )
        return reply.changed

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await put(first, stranger)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [await put(first, owner), await put(first, owner), await put(second, owner)] == [
        True,
        False,
        True,
    ]
    await pay(billing, stripe, first)
    assert "multi_community" in (await plan_of(billing, second))[1]
    held = await billing.GetCompanyEntitlements(
        billing_pb2.GetCompanyEntitlementsRequest(company_id=group.group_id)
    )
    assert (held.kind, held.owner_account_id, held.plan) == (
        billing_pb2.COMPANY_KIND_GROUP,
        owner,
        ENTERPRISE,
    )

    assert await put(second, owner, member=False)
    assert await plan_of(billing, second) == (FREE, set())
    # Each change (not the repeated join, not the refused one) is announced for xp, in order.
    assert await grouped(sessionmaker, first) == [group.group_id]
    assert await grouped(sessionmaker, second) == [group.group_id, ""]
    # The daily checks announce each community's group again (xp learns groups made before
    # it consumed these events); a community that left has none to announce.
    report = await billing_checks(settings)
    assert report.groups_announced >= 1
    assert await grouped(sessionmaker, first) == [group.group_id, group.group_id]
    assert await grouped(sessionmaker, second) == [group.group_id, ""]

    # A community of a Whop company cannot join a group; an unknown group is not found.
    whop_community = new_id("exp")
    await xp_says(bus, billing, whop_community, new_id("biz"))
    with pytest.raises(grpc.aio.AioRpcError) as whop:
        await put(whop_community, owner)
    assert whop.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await billing.SetGroupCommunity(
            billing_pb2.SetGroupCommunityRequest(
                group_id="grp_" + "0" * 24, community_id=first, owner_account_id=owner, member=True
            )
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    unknown = await billing.GetCompanyEntitlements(
        billing_pb2.GetCompanyEntitlementsRequest(company_id=new_id("biz"))
    )
    assert (unknown.plan, unknown.kind, list(unknown.community_ids)) == (
        FREE,
        billing_pb2.COMPANY_KIND_UNSPECIFIED,
        [],
    )


async def test_a_platform_admins_plan_for_a_company_covers_every_community_of_it(
    billing: Billing, bus: EventBus, sessionmaker: Sessions
) -> None:
    company = new_id("biz")
    first, second = new_id("exp"), new_id("exp")
    await xp_says(bus, billing, first, company)
    await xp_says(bus, billing, second, company)

    await billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=company,
            plan=billing_pb2.PLAN_ENTERPRISE,
            admin_user_id="ops",
            reason="enterprise trial for the company",
        )
    )

    for community in (first, second):
        plan, features = await plan_of(billing, community)
        assert (plan, "multi_community" in features) == (ENTERPRISE, True)
        assert announced_plans(await announced(sessionmaker, community))[-1][0] == "enterprise"
    held = await billing.GetCompanyEntitlements(
        billing_pb2.GetCompanyEntitlementsRequest(company_id=company)
    )
    assert held.plan == ENTERPRISE
