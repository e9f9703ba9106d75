"""The billing process's own metrics: Stripe webhook events by type and outcome."""

from __future__ import annotations

from prometheus_client import Counter

STRIPE_EVENTS = Counter(
    "wee5_stripe_events_total",
    "Stripe webhook events by type (those billing acts on; any other is `other`) and outcome: "
    "applied, unchanged, stale, ignored, duplicate, bad_signature, bad_payload, not_configured.",
    ["event_type", "outcome"],
)

# The types billing acts on: a label value per type, never whatever a payload says.
KNOWN_TYPES = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "invoice.paid",
        "invoice.payment_failed",
    }
)


def count_stripe_event(event_type: str | None, outcome: str) -> None:
    label = event_type if event_type in KNOWN_TYPES else ("other" if event_type else "unknown")
    STRIPE_EVENTS.labels(label, outcome).inc()
