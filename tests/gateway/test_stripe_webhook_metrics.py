"""Stripe deliveries through the gateway are counted by outcome in `wee5_webhooks_total`:
processed, duplicate, and rejected when billing refuses the signature."""

from __future__ import annotations

from tests.gateway.test_billing import (
    Client,
    Sessions,
    billing_addr,
    completed_checkout,
    gateway,
    post_webhook,
    settings,
    stripe,
    xp_addr,
)
from tests.support.metrics import in_process_metrics_url, scrape, value
from tests.support.stripe import FakeStripe
from wee5_gateway.config import GatewaySettings

__all__ = ["billing_addr", "gateway", "settings", "stripe", "xp_addr"]  # fixtures used here


async def test_stripe_deliveries_are_counted_by_outcome(
    gateway: Client,
    settings: GatewaySettings,
    stripe: FakeStripe,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    url = in_process_metrics_url()
    before = await scrape(url)
    body = await completed_checkout(gateway, settings, stripe, sessionmaker, community_id)

    statuses = [(await post_webhook(gateway, body)).status_code for _ in range(2)]
    forged = await post_webhook(gateway, body, "t=1,v1=deadbeef")
    after = await scrape(url)

    assert (statuses, forged.status_code) == ([200, 200], 400)

    def grew(outcome: str) -> float:
        name = "wee5_webhooks_total"
        return value(after, name, provider="stripe", outcome=outcome) - value(
            before, name, provider="stripe", outcome=outcome
        )

    assert (grew("processed"), grew("duplicate"), grew("rejected")) == (1, 1, 1)
    assert value(after, "wee5_stripe_events_total", outcome="bad_signature") >= 1
