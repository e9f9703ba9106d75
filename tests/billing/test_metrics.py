"""billing's Stripe webhook metrics: every event billing is handed is counted by its type (the
types billing acts on; any other is `other`) and what became of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from tests.billing.test_stripe import billing, checkout, deliver, settings, stripe
from tests.support.metrics import in_process_metrics_url, scrape, value
from tests.support.stripe import FakeStripe, event, sign
from wee5.billing.v1 import billing_pb2

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Billing

__all__ = ["billing", "settings", "stripe"]  # the fixtures these tests use

EVENTS = "wee5_stripe_events_total"


async def test_stripe_events_are_counted_by_type_and_outcome(
    billing: Billing, stripe: FakeStripe, community_id: str
) -> None:
    url = in_process_metrics_url()
    before = await scrape(url)
    started = await checkout(billing, community_id)
    session, _ = stripe.complete_checkout(started.session_id)
    completed = event("checkout.session.completed", session)

    await deliver(billing, completed)
    await deliver(billing, completed)
    await deliver(billing, event("customer.created", {"id": "cus_metrics", "object": "customer"}))
    with pytest.raises(grpc.aio.AioRpcError):
        await billing.HandleStripeWebhook(
            billing_pb2.HandleStripeWebhookRequest(
                payload=completed, signature_header=sign(completed, secret="whsec_someone_else")
            )
        )
    after = await scrape(url)

    def grew(**labels: str) -> float:
        return value(after, EVENTS, **labels) - value(before, EVENTS, **labels)

    checkout_completed = "checkout.session.completed"
    assert grew(event_type=checkout_completed, outcome="applied") == 1
    assert grew(event_type=checkout_completed, outcome="duplicate") == 1
    assert grew(event_type="other", outcome="ignored") == 1
    assert grew(event_type="unknown", outcome="bad_signature") == 1
    assert grew() == 4
