"""Billing against Stripe: checkout through the official SDK to a local server speaking Stripe's
API, and Stripe-signed webhooks driving each community's subscription, over real gRPC,
Postgres and NATS."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.stripe import (
    API_KEY,
    DAY,
    WEBHOOK_SECRET,
    FakeStripe,
    StripeServer,
    event,
    invoice_object,
    sign,
    subscription_object,
)
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.events.v1 import events_pb2
from wee5_billing.config import BillingSettings
from wee5_billing.models import StripeEvent, Subscription, SubscriptionChange, outbox
from wee5_billing.server import build
from wee5_billing.stripe_api import StripeApi
from wee5_billing.tasks import LOCK_ID, billing_checks
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Billing

Sessions = async_sessionmaker[AsyncSession]
PRICES = {
    f"stripe_price_{plan}_{interval}": f"price_{plan}_{interval}"
    for plan in ("premium", "enterprise")
    for interval in ("monthly", "yearly")
}
SUCCESS = "https://app.example.test/billing/done"
CANCEL = "https://app.example.test/billing/cancel"


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


def stripe_settings(stripe: FakeStripe, **overrides: Any) -> BillingSettings:
    return BillingSettings(
        **{
            "stripe_secret_key": API_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": stripe.base_url,
            "stripe_max_network_retries": 0,
            **PRICES,
            **overrides,
        }
    )


@pytest.fixture(scope="module")
async def settings(stripe: FakeStripe) -> BillingSettings:
    return stripe_settings(stripe, billing_addr=f"127.0.0.1:{free_port()}")


@pytest.fixture(scope="module")
async def billing(
    database_url: str, bus: EventBus, settings: BillingSettings
) -> AsyncIterator[Billing]:
    server = await build(settings)
    await server.start()
    client = channel(settings.billing_addr)
    try:
        yield billing_pb2_grpc.BillingServiceStub(client)
    finally:
        await client.close(None)
        await server.stop()


async def checkout(
    billing: Billing,
    community_id: str,
    *,
    owner: str | None = None,
    plan: billing_pb2.Plan.ValueType = billing_pb2.PLAN_PREMIUM,
    interval: billing_pb2.BillingInterval.ValueType = billing_pb2.BILLING_INTERVAL_MONTHLY,
    idempotency_key: str = "",
    success_url: str = SUCCESS,
) -> billing_pb2.CreateCheckoutSessionResponse:
    return await billing.CreateCheckoutSession(
        billing_pb2.CreateCheckoutSessionRequest(
            community_id=community_id,
            owner_account_id=owner or str(uuid.uuid4()),
            owner_user_id="user_owner",
            owner_email="owner@example.test",
            plan=plan,
            interval=interval,
            success_url=success_url,
            cancel_url=CANCEL,
            idempotency_key=idempotency_key,
        )
    )


async def deliver(
    billing: Billing, body: bytes, signature: str | None = None
) -> billing_pb2.HandleStripeWebhookResponse:
    return await billing.HandleStripeWebhook(
        billing_pb2.HandleStripeWebhookRequest(
            payload=body, signature_header=signature or sign(body)
        )
    )


async def entitlements(billing: Billing, community_id: str) -> billing_pb2.GetEntitlementsResponse:
    return await billing.GetEntitlements(
        billing_pb2.GetEntitlementsRequest(community_id=community_id)
    )


async def subscription_row(sessions: Sessions, community_id: str) -> Subscription | None:
    async with sessions() as session:
        row: Subscription | None = await session.scalar(
            select(Subscription).where(Subscription.community_id == community_id)
        )
        return row


async def outbox_events(sessions: Sessions, subject: str, community_id: str) -> list[Any]:
    message_type: Any = {
        "billing.subscription.changed": events_pb2.SubscriptionChanged,
        "billing.subscription.renewed": events_pb2.SubscriptionRenewed,
    }[subject]
    async with sessions() as session:
        rows = (
            await session.execute(
                select(outbox.c.payload).where(outbox.c.subject == subject).order_by(outbox.c.id)
            )
        ).all()
    events = [message_type.FromString(row.payload) for row in rows]
    return [e for e in events if e.meta.community_id == community_id]


async def paid_subscription(
    billing: Billing, stripe: FakeStripe, community_id: str, **checkout_args: Any
) -> dict[str, Any]:
    """Checkout, payment in Stripe, and the `checkout.session.completed` webhook."""
    started = await checkout(billing, community_id, **checkout_args)
    session, subscription = stripe.complete_checkout(started.session_id)
    await deliver(billing, event("checkout.session.completed", session))
    return subscription


# --- checkout --------------------------------------------------------------------------------


async def test_checkout_creates_a_session_naming_the_community_with_an_idempotency_key(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    owner = str(uuid.uuid4())

    reply = await checkout(
        billing, community_id, owner=owner, interval=billing_pb2.BILLING_INTERVAL_YEARLY
    )

    assert reply.url == f"https://checkout.stripe.com/c/pay/{reply.session_id}"
    [request] = [
        r
        for r in stripe.calls("POST", "/v1/checkout/sessions")
        if r.params["metadata"]["community_id"] == community_id
    ]
    assert request.headers["idempotency-key"].startswith("wee5-checkout-")
    assert request.headers["stripe-version"]
    params = request.params
    assert params["mode"] == "subscription"
    assert params["line_items"] == {"0": {"price": "price_premium_yearly", "quantity": "1"}}
    assert (params["success_url"], params["cancel_url"]) == (SUCCESS, CANCEL)
    assert params["client_reference_id"] == community_id
    expected = {
        "community_id": community_id,
        "owner_account_id": owner,
        "owner_user_id": "user_owner",
        "plan": "premium",
        "interval": "yearly",
    }
    assert params["metadata"] == expected
    assert params["subscription_data"]["metadata"] == expected
    customer = stripe.customers[params["customer"]]
    assert customer["email"] == "owner@example.test"
    assert customer["metadata"] == {"owner_account_id": owner}


async def test_one_stripe_customer_per_owner_account_across_communities(
    billing: Billing, stripe: FakeStripe
) -> None:
    owner = str(uuid.uuid4())
    first, second = f"exp_{uuid.uuid4().hex[:12]}", f"exp_{uuid.uuid4().hex[:12]}"

    await checkout(billing, first, owner=owner)
    await checkout(billing, second, owner=owner, plan=billing_pb2.PLAN_ENTERPRISE)

    customers = {
        r.params["customer"]
        for r in stripe.calls("POST", "/v1/checkout/sessions")
        if r.params["metadata"]["owner_account_id"] == owner
    }
    assert len(customers) == 1
    created = [
        r
        for r in stripe.calls("POST", "/v1/customers")
        if r.params["metadata"]["owner_account_id"] == owner
    ]
    assert len(created) == 1


async def test_a_retried_checkout_gets_the_same_session(
    billing: Billing, community_id: str
) -> None:
    owner = str(uuid.uuid4())

    first = await checkout(billing, community_id, owner=owner, idempotency_key="click-1")
    again = await checkout(billing, community_id, owner=owner, idempotency_key="click-1")
    other = await checkout(billing, community_id, owner=owner, idempotency_key="click-2")

    assert again.session_id == first.session_id
    assert other.session_id != first.session_id


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"success_url": "javascript:alert(1)"}, "success_url"),
        ({"success_url": "/relative/path"}, "success_url"),
        ({"plan": billing_pb2.PLAN_FREE}, "plan"),
        ({"interval": billing_pb2.BILLING_INTERVAL_UNSPECIFIED}, "interval"),
    ],
)
async def test_checkout_refuses_bad_input_without_calling_stripe(
    billing: Billing, stripe: FakeStripe, community_id: str, change: dict[str, Any], complaint: str
) -> None:
    before = len(stripe.requests)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await checkout(billing, community_id, **change)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in (raised.value.details() or "")
    assert len(stripe.requests) == before


async def test_checkout_of_a_plan_without_a_price_names_the_missing_setting(
    database_url: str, bus: EventBus, stripe: FakeStripe, community_id: str
) -> None:
    settings = stripe_settings(
        stripe, billing_addr=f"127.0.0.1:{free_port()}", stripe_price_enterprise_yearly=None
    )
    server = await build(settings)
    await server.start()
    try:
        async with channel(settings.billing_addr) as chan:
            stub: Billing = billing_pb2_grpc.BillingServiceStub(chan)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await checkout(
                    stub,
                    community_id,
                    plan=billing_pb2.PLAN_ENTERPRISE,
                    interval=billing_pb2.BILLING_INTERVAL_YEARLY,
                )
            plans = await stub.ListPlans(billing_pb2.ListPlansRequest())
    finally:
        await server.stop()

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "WEE5_STRIPE_PRICE_ENTERPRISE_YEARLY" in (raised.value.details() or "")
    enterprise = plans.plans[2]
    assert [(p.interval, p.stripe_price_id) for p in enterprise.prices] == [
        (billing_pb2.BILLING_INTERVAL_MONTHLY, "price_enterprise_monthly")
    ]


async def test_a_community_already_paying_cannot_check_out_again(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    await paid_subscription(billing, stripe, community_id)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await checkout(billing, community_id, plan=billing_pb2.PLAN_ENTERPRISE)

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "billing portal" in (raised.value.details() or "")


# --- webhooks --------------------------------------------------------------------------------


async def test_checkout_completed_unlocks_the_plan_and_announces_it(
    billing: Billing, stripe: FakeStripe, community_id: str, sessionmaker: Sessions
) -> None:
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_FREE
    started = await checkout(billing, community_id)
    session, subscription = stripe.complete_checkout(started.session_id)

    reply = await deliver(billing, event("checkout.session.completed", session))

    assert (reply.event_type, reply.duplicate, reply.community_id) == (
        "checkout.session.completed",
        False,
        community_id,
    )
    current = await entitlements(billing, community_id)
    assert current.plan == billing_pb2.PLAN_PREMIUM
    assert current.status == billing_pb2.SUBSCRIPTION_STATUS_ACTIVE
    shown = (
        await billing.GetSubscription(billing_pb2.GetSubscriptionRequest(community_id=community_id))
    ).subscription
    period_end = subscription["items"]["data"][0]["current_period_end"]
    assert shown.stripe_subscription_id == subscription["id"]
    assert shown.interval == billing_pb2.BILLING_INTERVAL_MONTHLY
    assert shown.current_period_end.ToSeconds() == period_end
    assert not shown.manual
    [changed] = await outbox_events(sessionmaker, "billing.subscription.changed", community_id)
    assert (changed.plan, changed.status) == ("premium", "active")
    assert changed.current_period_end.ToSeconds() == period_end


async def test_the_same_event_delivered_twice_is_processed_once(
    billing: Billing, stripe: FakeStripe, community_id: str, sessionmaker: Sessions
) -> None:
    started = await checkout(billing, community_id)
    session, _ = stripe.complete_checkout(started.session_id)
    body = event("checkout.session.completed", session)

    first = await deliver(billing, body)
    second = await deliver(billing, body, sign(body, timestamp=int(time.time()) + 5))

    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.event_id == first.event_id
    assert len(await outbox_events(sessionmaker, "billing.subscription.changed", community_id)) == 1
    async with sessionmaker() as s:
        changes = await s.scalars(
            select(SubscriptionChange).where(SubscriptionChange.community_id == community_id)
        )
        assert len(list(changes)) == 1


async def test_concurrent_deliveries_of_one_event_apply_it_once(
    billing: Billing, stripe: FakeStripe, community_id: str, sessionmaker: Sessions
) -> None:
    subscription = subscription_object(
        customer="cus_test_x",
        price="price_premium_monthly",
        metadata={"community_id": community_id},
    )
    body = event("customer.subscription.created", subscription)

    replies = await asyncio.gather(*(deliver(billing, body) for _ in range(4)))

    assert sorted(r.duplicate for r in replies) == [False, True, True, True]
    assert len(await outbox_events(sessionmaker, "billing.subscription.changed", community_id)) == 1


async def test_concurrent_first_events_of_a_subscription_all_apply(
    billing: Billing, community_id: str, sessionmaker: Sessions
) -> None:
    created_at = int(time.time()) - 60
    incomplete = subscription_object(
        customer="cus_test_race",
        price="price_premium_monthly",
        metadata={"community_id": community_id},
        status="incomplete",
        created=created_at,
    )
    bodies = [
        event("customer.subscription.created", incomplete, created=created_at),
        event(
            "customer.subscription.updated",
            {**incomplete, "status": "active"},
            created=created_at + 1,
        ),
    ]

    replies = await asyncio.gather(*(deliver(billing, body) for body in bodies))

    assert [r.community_id for r in replies] == [community_id, community_id]
    current = await entitlements(billing, community_id)
    assert current.status == billing_pb2.SUBSCRIPTION_STATUS_ACTIVE


async def test_updated_arriving_before_created_leaves_the_newer_state(
    billing: Billing, community_id: str
) -> None:
    created_at = int(time.time()) - 60
    metadata = {"community_id": community_id, "owner_user_id": "user_owner"}
    incomplete = subscription_object(
        customer="cus_test_order",
        price="price_premium_monthly",
        metadata=metadata,
        status="incomplete",
        created=created_at,
    )
    active = {**incomplete, "status": "active"}

    await deliver(
        billing,
        event(
            "customer.subscription.updated",
            active,
            created=created_at + 2,
            previous_attributes={"status": "incomplete"},
        ),
    )
    late = await deliver(
        billing, event("customer.subscription.created", incomplete, created=created_at)
    )

    assert late.community_id == community_id
    current = await entitlements(billing, community_id)
    assert (current.plan, current.status) == (
        billing_pb2.PLAN_PREMIUM,
        billing_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    )


async def test_events_of_the_same_second_keep_the_state_further_along(
    billing: Billing, community_id: str
) -> None:
    second = int(time.time()) - 30
    incomplete = subscription_object(
        customer="cus_test_tie",
        price="price_premium_monthly",
        metadata={"community_id": community_id},
        status="incomplete",
        created=second,
    )
    await deliver(
        billing,
        event("customer.subscription.updated", {**incomplete, "status": "active"}, created=second),
    )
    await deliver(billing, event("customer.subscription.created", incomplete, created=second))

    assert (
        await entitlements(billing, community_id)
    ).status == billing_pb2.SUBSCRIPTION_STATUS_ACTIVE


async def test_the_period_end_of_older_api_versions_is_read_from_the_subscription(
    billing: Billing, community_id: str
) -> None:
    legacy = subscription_object(
        customer="cus_test_legacy",
        price="price_enterprise_yearly",
        metadata={"community_id": community_id},
        interval="year",
        legacy_period=True,
    )

    await deliver(billing, event("customer.subscription.created", legacy))

    shown = (
        await billing.GetSubscription(billing_pb2.GetSubscriptionRequest(community_id=community_id))
    ).subscription
    assert shown.current_period_end.ToSeconds() == legacy["current_period_end"]
    assert "current_period_end" not in legacy["items"]["data"][0]
    assert shown.plan == billing_pb2.PLAN_ENTERPRISE
    assert shown.interval == billing_pb2.BILLING_INTERVAL_YEARLY


async def test_a_plan_change_in_the_portal_follows_the_new_price(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    upgraded = json.loads(json.dumps(subscription))
    upgraded["items"]["data"][0]["price"]["id"] = "price_enterprise_yearly"
    upgraded["cancel_at_period_end"] = True

    await deliver(
        billing,
        event(
            "customer.subscription.updated",
            upgraded,
            created=int(time.time()) + 10,
            previous_attributes={"cancel_at_period_end": False},
        ),
    )

    current = await entitlements(billing, community_id)
    assert current.plan == billing_pb2.PLAN_ENTERPRISE
    shown = (
        await billing.GetSubscription(billing_pb2.GetSubscriptionRequest(community_id=community_id))
    ).subscription
    assert shown.interval == billing_pb2.BILLING_INTERVAL_YEARLY
    assert shown.cancel_at_period_end


async def test_a_deleted_subscription_drops_the_community_to_free_and_stays_canceled(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    later = int(time.time()) + 10
    canceled = {**subscription, "status": "canceled", "ended_at": later, "canceled_at": later}

    await deliver(billing, event("customer.subscription.deleted", canceled, created=later))
    # A stale "active" update delivered after the deletion changes nothing.
    await deliver(billing, event("customer.subscription.updated", subscription, created=later + 1))

    current = await entitlements(billing, community_id)
    assert (current.plan, current.status) == (
        billing_pb2.PLAN_FREE,
        billing_pb2.SUBSCRIPTION_STATUS_CANCELED,
    )


async def test_a_bad_signature_is_refused_and_changes_nothing(
    billing: Billing, stripe: FakeStripe, community_id: str, sessionmaker: Sessions
) -> None:
    started = await checkout(billing, community_id)
    session, _ = stripe.complete_checkout(started.session_id)
    body = event("checkout.session.completed", session)
    stale = int(time.time()) - 301

    for signature in (
        sign(body, secret="whsec_someone_else"),
        sign(body, timestamp=stale),
        sign(body + b" ", timestamp=int(time.time())),
        "t=1,v0=abc",
        "",
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await billing.HandleStripeWebhook(
                billing_pb2.HandleStripeWebhookRequest(payload=body, signature_header=signature)
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, signature

    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_FREE
    event_id = json.loads(body)["id"]
    async with sessionmaker() as s:
        assert await s.get(StripeEvent, event_id) is None
    assert await outbox_events(sessionmaker, "billing.subscription.changed", community_id) == []


async def test_events_billing_does_not_handle_are_recorded_and_ignored(
    billing: Billing, sessionmaker: Sessions
) -> None:
    body = event("customer.created", {"id": "cus_test_new", "object": "customer"})

    reply = await deliver(billing, body)

    assert (reply.event_type, reply.community_id, reply.duplicate) == (
        "customer.created",
        "",
        False,
    )
    async with sessionmaker() as s:
        stored = await s.get(StripeEvent, reply.event_id)
    assert stored is not None
    assert stored.outcome == "ignored"


# --- payment failure, grace, renewal ---------------------------------------------------------


async def test_a_failed_payment_keeps_features_for_the_grace_period_then_the_checks_drop_to_free(
    billing: Billing,
    stripe: FakeStripe,
    settings: BillingSettings,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    failed_at = int(time.time()) + 5
    invoice = invoice_object(subscription, paid=False, created=failed_at)

    # Stripe marks the subscription past due; billing hears of it by the invoice event.
    stripe.subscriptions[subscription["id"]]["status"] = "past_due"
    await deliver(billing, event("invoice.payment_failed", invoice, created=failed_at))

    past_due = await entitlements(billing, community_id)
    assert past_due.status == billing_pb2.SUBSCRIPTION_STATUS_PAST_DUE
    assert past_due.plan == billing_pb2.PLAN_PREMIUM
    grace_until = datetime.fromtimestamp(failed_at, UTC) + timedelta(days=7)
    assert past_due.grace_until.ToDatetime(tzinfo=UTC) == grace_until

    within = await billing_checks(settings, now=grace_until - timedelta(hours=1))
    assert community_id not in within.lapsed
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_PREMIUM

    report = await billing_checks(settings, now=grace_until + timedelta(days=1))
    again = await billing_checks(settings, now=grace_until + timedelta(days=2))

    assert community_id in report.lapsed
    assert community_id not in again.lapsed
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_FREE
    changed = await outbox_events(sessionmaker, "billing.subscription.changed", community_id)
    assert [(e.plan, e.status) for e in changed] == [
        ("premium", "active"),
        ("premium", "past_due"),
        ("free", "past_due"),
    ]
    async with sessionmaker() as s:
        history = list(
            await s.scalars(
                select(SubscriptionChange)
                .where(SubscriptionChange.community_id == community_id)
                .order_by(SubscriptionChange.id)
            )
        )
    assert history[-1].source == "billing_checks"
    assert "grace" in history[-1].reason
    assert history[-1].before is not None
    assert history[-1].before["effective_plan"] == "premium"
    assert history[-1].after["effective_plan"] == "free"


async def test_paying_after_a_failure_restores_the_plan(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    now = int(time.time())
    failed = invoice_object(subscription, paid=False, created=now + 5)
    paid = {**failed, "status": "paid", "amount_paid": 1900}

    await deliver(billing, event("invoice.payment_failed", failed, created=now + 5))
    await deliver(billing, event("invoice.paid", paid, created=now + 6))

    current = await entitlements(billing, community_id)
    assert (current.plan, current.status) == (
        billing_pb2.PLAN_PREMIUM,
        billing_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    )
    assert not current.HasField("grace_until")


async def test_a_paid_renewal_is_announced_once_to_the_owner(
    billing: Billing, stripe: FakeStripe, community_id: str, sessionmaker: Sessions, bus: EventBus
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    invoice = invoice_object(subscription, billing_reason="subscription_cycle")
    first_invoice = invoice_object(subscription, billing_reason="subscription_create")
    listener = await bus.js.subscribe(
        bus.subject("billing.subscription.renewed"),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.NEW,
    )
    try:
        await deliver(billing, event("invoice.paid", first_invoice))
        body = event("invoice.paid", invoice)
        await deliver(billing, body)
        await deliver(billing, body)  # a redelivery
        # The same invoice in another event (Stripe sends one; a replay tool may not), also
        # after a later renewal was announced.
        await deliver(billing, event("invoice.paid", invoice))
        later = invoice_object(subscription, billing_reason="subscription_cycle")
        await deliver(billing, event("invoice.paid", later))
        await deliver(billing, event("invoice.paid", invoice))

        async with asyncio.timeout(10):
            while True:
                message = await listener.next_msg(timeout=10)
                published = events_pb2.SubscriptionRenewed.FromString(message.data)
                if published.meta.community_id == community_id:
                    break
    finally:
        await listener.unsubscribe()

    renewed = await outbox_events(sessionmaker, "billing.subscription.renewed", community_id)
    assert [(e.owner_user_id, e.invoice_id) for e in renewed] == [
        ("user_owner", invoice["id"]),
        ("user_owner", later["id"]),
    ]
    assert (published.owner_user_id, published.invoice_id) == ("user_owner", invoice["id"])


async def test_an_invoice_event_older_than_the_subscription_state_is_ignored(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    now = int(time.time())
    await deliver(billing, event("invoice.paid", invoice_object(subscription), created=now + 20))
    old_failure = invoice_object(subscription, paid=False, created=now - 3600)

    await deliver(billing, event("invoice.payment_failed", old_failure, created=now - 3600))

    assert (
        await entitlements(billing, community_id)
    ).status == billing_pb2.SUBSCRIPTION_STATUS_ACTIVE


# --- portal ---------------------------------------------------------------------------------


async def test_the_paying_owner_gets_a_portal_url_and_nobody_else(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    owner = str(uuid.uuid4())
    await paid_subscription(billing, stripe, community_id, owner=owner)

    reply = await billing.CreatePortalSession(
        billing_pb2.CreatePortalSessionRequest(
            community_id=community_id, owner_account_id=owner, return_url=SUCCESS
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await billing.CreatePortalSession(
            billing_pb2.CreatePortalSessionRequest(
                community_id=community_id, owner_account_id=str(uuid.uuid4())
            )
        )

    assert reply.url.startswith("https://billing.stripe.com/p/session/")
    assert stripe.calls("POST", "/v1/billing_portal/sessions")[-1].params["return_url"] == SUCCESS
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_portal_of_a_community_that_never_paid_is_a_failed_precondition(
    billing: Billing, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.CreatePortalSession(
            billing_pb2.CreatePortalSessionRequest(
                community_id=community_id, owner_account_id=str(uuid.uuid4())
            )
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# --- billing checks: reconciliation and the lock -----------------------------------------------


async def test_reconciliation_repairs_drift_from_stripe_and_reports_it(
    billing: Billing, stripe: FakeStripe, settings: BillingSettings, community_id: str
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    # Stripe canceled it, and the webhook never arrived.
    stripe.subscriptions[subscription["id"]] = {**subscription, "status": "canceled"}

    report = await billing_checks(settings, now=datetime.now(UTC) + timedelta(minutes=1))

    assert report.reconciled
    [repair] = [r for r in report.repaired if r["community_id"] == community_id]
    assert repair["before"]["status"] == "active"
    assert repair["after"]["status"] == "canceled"
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_FREE
    again = await billing_checks(settings, now=datetime.now(UTC) + timedelta(minutes=2))
    assert community_id not in [r["community_id"] for r in again.repaired]


async def test_a_second_run_while_one_holds_the_lock_does_nothing(
    settings: BillingSettings, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK_ID})
        try:
            report = await billing_checks(settings)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})

    assert not report.ran


async def test_the_checks_skip_reconciliation_without_a_stripe_key(
    database_url: str, stripe: FakeStripe
) -> None:
    settings = stripe_settings(stripe, stripe_secret_key=None)

    report = await billing_checks(settings, stripe=StripeApi(settings))

    assert report.ran
    assert not report.reconciled


async def test_the_grace_period_is_configurable(
    database_url: str, bus: EventBus, stripe: FakeStripe, community_id: str
) -> None:
    settings = stripe_settings(
        stripe, billing_addr=f"127.0.0.1:{free_port()}", billing_grace_days=2
    )
    server = await build(settings)
    await server.start()
    try:
        async with channel(settings.billing_addr) as chan:
            stub: Billing = billing_pb2_grpc.BillingServiceStub(chan)
            subscription = await paid_subscription(stub, stripe, community_id)
            failed_at = int(time.time()) + 5
            await deliver(
                stub,
                event(
                    "invoice.payment_failed",
                    invoice_object(subscription, paid=False),
                    created=failed_at,
                ),
            )
            grace = (await entitlements(stub, community_id)).grace_until.ToSeconds()
    finally:
        await server.stop()

    assert grace == failed_at + 2 * DAY


async def test_an_assigned_plan_and_a_subscription_give_the_dearer_of_the_two(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    subscription = await paid_subscription(billing, stripe, community_id)
    await billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=community_id,
            plan=billing_pb2.PLAN_ENTERPRISE,
            admin_user_id="ops",
            reason="partner",
        )
    )
    assert (await entitlements(billing, community_id)).plan == billing_pb2.PLAN_ENTERPRISE

    later = int(time.time()) + 10
    await deliver(
        billing,
        event(
            "customer.subscription.deleted", {**subscription, "status": "canceled"}, created=later
        ),
    )

    current = await entitlements(billing, community_id)
    assert current.plan == billing_pb2.PLAN_ENTERPRISE
    assert current.status == billing_pb2.SUBSCRIPTION_STATUS_CANCELED


@pytest.mark.parametrize(
    "obj",
    [
        {"object": "subscription", "status": "active"},
        {"id": "sub_test_x", "object": "subscription", "created": "yesterday", "items": []},
    ],
)
async def test_a_signed_but_malformed_subscription_is_refused_and_not_recorded(
    billing: Billing, sessionmaker: Sessions, obj: dict[str, Any]
) -> None:
    body = event("customer.subscription.updated", obj)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await deliver(billing, body)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with sessionmaker() as s:
        assert await s.get(StripeEvent, json.loads(body)["id"]) is None


async def test_reconciliation_leaves_a_row_that_agrees_with_stripe_untouched(
    billing: Billing,
    stripe: FakeStripe,
    settings: BillingSettings,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    await paid_subscription(billing, stripe, community_id)
    before = await subscription_row(sessionmaker, community_id)

    report = await billing_checks(settings, now=datetime.now(UTC) + timedelta(hours=1))

    after = await subscription_row(sessionmaker, community_id)
    assert community_id not in [r["community_id"] for r in report.repaired]
    assert before is not None
    assert after is not None
    # Its Stripe timestamp is not moved to this clock: the next real event still applies.
    assert after.stripe_version_at == before.stripe_version_at
