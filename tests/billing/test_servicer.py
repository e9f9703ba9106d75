"""BillingService over real gRPC: the billing process built in-process on a free port, over the
tests' Postgres and NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, cast

import grpc
import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.events.v1 import events_pb2
from wee5_billing.config import BillingSettings
from wee5_billing.models import outbox
from wee5_billing.server import build
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel, check_health

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Billing

PREMIUM = ["custom_xp_rates", "analytics", "reward_rules", "announcement_templates"]
ENTERPRISE = [*PREMIUM, "badges", "multi_community", "cross_community_analytics"]


@pytest.fixture(scope="module")
async def billing(database_url: str, bus: EventBus) -> AsyncIterator[Billing]:
    """The billing server. Depends on `bus` so the run's streams are deleted afterwards."""
    address = f"127.0.0.1:{free_port()}"
    server = await build(BillingSettings(billing_addr=address))
    await server.start()
    client = channel(address)
    try:
        assert await check_health(client)
        yield billing_pb2_grpc.BillingServiceStub(client)
    finally:
        await client.close(None)
        await server.stop()


async def set_plan(
    billing: Billing,
    community_id: str,
    plan: billing_pb2.Plan.ValueType,
    reason: str = "pilot customer",
) -> tuple[billing_pb2.SetCommunityPlanResponse, str]:
    """The response and the plan it replaced."""
    reply = await billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=community_id, plan=plan, admin_user_id="admin-1", reason=reason
        )
    )
    return reply, billing_pb2.Plan.Name(reply.previous_plan).removeprefix("PLAN_").lower()


async def entitlements(billing: Billing, community_id: str) -> billing_pb2.GetEntitlementsResponse:
    return await billing.GetEntitlements(
        billing_pb2.GetEntitlementsRequest(community_id=community_id)
    )


async def changed_events(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> list[events_pb2.SubscriptionChanged]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(select(outbox.c.subject, outbox.c.payload).order_by(outbox.c.id))
        ).all()
    events = []
    for row in rows:
        event = events_pb2.SubscriptionChanged.FromString(row.payload)
        if event.meta.community_id == community_id:
            assert row.subject == "billing.subscription.changed"
            events.append(event)
    return events


async def test_list_plans_offers_free_premium_and_enterprise_with_their_features(
    billing: Billing,
) -> None:
    reply = await billing.ListPlans(billing_pb2.ListPlansRequest())

    assert [(p.plan, p.name, list(p.features)) for p in reply.plans] == [
        (billing_pb2.PLAN_FREE, "Free", []),
        (billing_pb2.PLAN_PREMIUM, "Premium", PREMIUM),
        (billing_pb2.PLAN_ENTERPRISE, "Enterprise", ENTERPRISE),
    ]
    assert all(plan.description for plan in reply.plans)


async def test_a_community_never_assigned_a_plan_is_on_free(
    billing: Billing, community_id: str
) -> None:
    reply = await entitlements(billing, community_id)
    subscription = await billing.GetSubscription(
        billing_pb2.GetSubscriptionRequest(community_id=community_id)
    )

    assert reply.plan == billing_pb2.PLAN_FREE
    assert list(reply.features) == []
    assert reply.status == billing_pb2.SUBSCRIPTION_STATUS_ACTIVE
    assert not subscription.HasField("subscription")


async def test_setting_a_plan_changes_entitlements_and_reports_the_plan_it_replaced(
    billing: Billing, community_id: str
) -> None:
    reply, previous = await set_plan(billing, community_id, billing_pb2.PLAN_PREMIUM)

    assert previous == "free"
    assert reply.subscription.community_id == community_id
    assert reply.subscription.plan == billing_pb2.PLAN_PREMIUM
    assert reply.subscription.status == billing_pb2.SUBSCRIPTION_STATUS_ACTIVE
    assert reply.subscription.manual
    premium = await entitlements(billing, community_id)
    assert (premium.plan, list(premium.features)) == (billing_pb2.PLAN_PREMIUM, PREMIUM)

    _, previous = await set_plan(billing, community_id, billing_pb2.PLAN_ENTERPRISE)

    assert previous == "premium"
    enterprise = await entitlements(billing, community_id)
    assert (enterprise.plan, list(enterprise.features)) == (
        billing_pb2.PLAN_ENTERPRISE,
        ENTERPRISE,
    )
    subscription = await billing.GetSubscription(
        billing_pb2.GetSubscriptionRequest(community_id=community_id)
    )
    assert subscription.subscription.plan == billing_pb2.PLAN_ENTERPRISE
    assert subscription.subscription.updated_at.ToDatetime() >= (
        subscription.subscription.created_at.ToDatetime()
    )


@pytest.mark.parametrize("plan", [billing_pb2.PLAN_UNSPECIFIED, 99])
async def test_an_unspecified_or_unknown_plan_is_invalid_and_changes_nothing(
    billing: Billing, community_id: str, plan: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await set_plan(billing, community_id, plan)  # type: ignore[arg-type]

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "plan" in (raised.value.details() or "")
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_FREE


async def test_requests_without_a_community_are_invalid(billing: Billing) -> None:
    calls: list[Awaitable[object]] = [
        billing.GetEntitlements(billing_pb2.GetEntitlementsRequest()),
        billing.GetSubscription(billing_pb2.GetSubscriptionRequest()),
        billing.SetCommunityPlan(
            billing_pb2.SetCommunityPlanRequest(
                plan=billing_pb2.PLAN_PREMIUM, admin_user_id="admin-1", reason="pilot"
            )
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "community_id" in (raised.value.details() or "")


@pytest.mark.parametrize(
    ("admin_user_id", "reason", "complaint"),
    [("", "pilot", "admin_user_id"), ("admin-1", "  ", "reason"), ("admin-1", "x" * 501, "reason")],
)
async def test_a_plan_change_needs_who_and_why(
    billing: Billing, community_id: str, admin_user_id: str, reason: str, complaint: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.SetCommunityPlan(
            billing_pb2.SetCommunityPlanRequest(
                community_id=community_id,
                plan=billing_pb2.PLAN_PREMIUM,
                admin_user_id=admin_user_id,
                reason=reason,
            )
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in (raised.value.details() or "")


async def test_an_expiring_assignment_is_refused_until_it_is_supported(
    billing: Billing, community_id: str
) -> None:
    request = billing_pb2.SetCommunityPlanRequest(
        community_id=community_id,
        plan=billing_pb2.PLAN_PREMIUM,
        admin_user_id="admin-1",
        reason="trial",
    )
    request.expires_at.GetCurrentTime()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.SetCommunityPlan(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_FREE


async def test_a_plan_change_writes_subscription_changed_to_the_outbox_once(
    billing: Billing, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await set_plan(billing, community_id, billing_pb2.PLAN_PREMIUM)
    # The same plan again (a retry, or a new reason) changes no plan: no second event.
    _, previous = await set_plan(billing, community_id, billing_pb2.PLAN_PREMIUM, "renewed")

    assert previous == "premium"
    events = await changed_events(sessionmaker, community_id)
    assert [(e.plan, e.status) for e in events] == [("premium", "active")]
    uuid.UUID(events[0].meta.event_id)
    assert events[0].meta.occurred_at.seconds > 0


async def test_the_relay_publishes_subscription_changed_on_jetstream(
    billing: Billing, community_id: str, bus: EventBus
) -> None:
    subscription = await bus.js.subscribe(
        bus.subject("billing.subscription.changed"),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.NEW,
    )
    try:
        await set_plan(billing, community_id, billing_pb2.PLAN_ENTERPRISE)

        async with asyncio.timeout(10):
            while True:
                message = await subscription.next_msg(timeout=10)
                event = events_pb2.SubscriptionChanged.FromString(message.data)
                if event.meta.community_id == community_id:
                    break
    finally:
        await subscription.unsubscribe()

    assert (event.plan, event.status) == ("enterprise", "active")
    assert (message.headers or {}).get("Nats-Msg-Id") == event.meta.event_id


async def test_concurrent_first_assignments_queue_so_only_one_replaces_free(
    billing: Billing, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    results = await asyncio.gather(
        set_plan(billing, community_id, billing_pb2.PLAN_PREMIUM),
        set_plan(billing, community_id, billing_pb2.PLAN_ENTERPRISE),
    )

    previous = sorted(previous for _, previous in results)
    final = (await entitlements(billing, community_id)).plan
    # Whichever committed second saw the first one's plan, not free, and its plan stayed.
    if previous == ["free", "premium"]:
        assert final == billing_pb2.PLAN_ENTERPRISE
    else:
        assert previous == ["enterprise", "free"]
        assert final == billing_pb2.PLAN_PREMIUM
    assert len(await changed_events(sessionmaker, community_id)) == 2


async def test_checkout_without_a_stripe_key_says_stripe_is_not_configured(
    billing: Billing, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.CreateCheckoutSession(
            billing_pb2.CreateCheckoutSessionRequest(
                community_id=community_id,
                owner_account_id=str(uuid.uuid4()),
                plan=billing_pb2.PLAN_PREMIUM,
                interval=billing_pb2.BILLING_INTERVAL_MONTHLY,
                success_url="https://app.example.test/paid",
                cancel_url="https://app.example.test/cancel",
            )
        )

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Stripe is not configured" in (raised.value.details() or "")
    reasons = dict(cast("tuple[tuple[str, str], ...]", raised.value.trailing_metadata() or ()))
    assert reasons.get("wee5-reason") == "stripe-not-configured"
