"""A paid renewal gives the community's owner +10 points in xp, once: billing publishes
`billing.subscription.renewed` (once per invoice) and xp consumes it (issue 4's consumer),
over real billing and xp servers, Postgres and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.stripe import (
    API_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    StripeServer,
    event,
    invoice_object,
    sign,
)
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.models import LedgerEntry
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Billing


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


@pytest.fixture(scope="module")
async def servers(
    database_url: str, redis: Redis, bus: EventBus, stripe: FakeStripe
) -> AsyncIterator[Billing]:
    xp = await build_xp(XpSettings(xp_addr=f"127.0.0.1:{free_port()}"))
    settings = BillingSettings(
        billing_addr=f"127.0.0.1:{free_port()}",
        stripe_secret_key=API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe.base_url,
        stripe_price_premium_monthly="price_premium_monthly",
    )
    billing = await build_billing(settings)
    await xp.start()
    await billing.start()
    client = channel(settings.billing_addr)
    try:
        yield billing_pb2_grpc.BillingServiceStub(client)
    finally:
        await client.close(None)
        await billing.stop()
        await xp.stop()


async def deliver(billing: Billing, body: bytes) -> None:
    await billing.HandleStripeWebhook(
        billing_pb2.HandleStripeWebhookRequest(payload=body, signature_header=sign(body))
    )


async def renewal_entries(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> list[LedgerEntry]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.community_id == community_id,
                LedgerEntry.reason == "subscription_renewed",
            )
        )
        return list(rows)


async def test_a_paid_renewal_gives_the_owner_ten_points_once(
    servers: Billing,
    stripe: FakeStripe,
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
) -> None:
    billing = servers
    started = await billing.CreateCheckoutSession(
        billing_pb2.CreateCheckoutSessionRequest(
            community_id=community_id,
            owner_account_id=str(uuid.uuid4()),
            owner_user_id="user_owner",
            plan=billing_pb2.PLAN_PREMIUM,
            interval=billing_pb2.BILLING_INTERVAL_MONTHLY,
            success_url="https://app.example.test/done",
            cancel_url="https://app.example.test/cancel",
        )
    )
    session, subscription = stripe.complete_checkout(started.session_id)
    await deliver(billing, event("checkout.session.completed", session))
    invoice = invoice_object(subscription, billing_reason="subscription_cycle")
    renewal = event("invoice.paid", invoice)

    await deliver(billing, renewal)
    await deliver(billing, renewal)  # Stripe redelivers
    await deliver(billing, event("invoice.paid", invoice))  # the same invoice, another event

    try:
        async with asyncio.timeout(20):
            while not await renewal_entries(sessionmaker, community_id):
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(
            "xp gave no renewal points in 20 s: it must consume billing.subscription.renewed"
        )
    # Give a second, wrongly published renewal the time to arrive: none may.
    await asyncio.sleep(1.0)
    entries = await renewal_entries(sessionmaker, community_id)
    assert [(e.user_id, e.delta) for e in entries] == [("user_owner", 10)]
