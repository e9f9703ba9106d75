"""Stripe's view of a community's subscription, applied to the local row: verified webhook
events (once each), the daily reconciliation with Stripe, and the lapse of a grace period.

A subscription never moves backwards, whatever order Stripe's events arrive in: each row keeps
the Stripe time of the data it holds, and older data is `stale`. Functions here work inside the
caller's transaction and never commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_billing.config import BillingSettings
from wee5_billing.models import (
    COMPANY,
    ENDED_STATUSES,
    INTERVALS,
    PAID_STATUSES,
    PAST_DUE_STATUSES,
    Subscription,
)
from wee5_billing.plans import PAID_PLANS, PLANS, effective_plan, subscribed_plan
from wee5_billing.repository import BillingRepository
from wee5_billing.stripe_api import (
    COMMUNITY_KEY,
    COMPANY_KEY,
    INTERVAL_KEY,
    OWNER_ACCOUNT_KEY,
    OWNER_USER_KEY,
    PLAN_KEY,
    Event,
    StripeApi,
    SubscriptionData,
    from_unix,
    invoice_subscription_id,
)
from wee5_billing.subscription_changes import (
    Before,
    Cause,
    SubscriptionChanges,
    iso,
    subscription_state,
)
from wee5_kit.communities import is_community_id
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import get_logger

log = get_logger("wee5.billing")

SUBSCRIPTION_RENEWED = "billing.subscription.renewed"
STRIPE_EVENT = "stripe_event"
# Renewal events get an id derived from the invoice, so consumers see one id per renewal.
_RENEWAL_NAMESPACE = uuid.UUID("6f0c2f4e-9d3b-4f0e-8b7a-2c1d5e4f3a21")
# Of two versions of a subscription stamped with the same second, the one further along wins.
_STATUS_RANK = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "past_due": 2,
    "unpaid": 2,
    "paused": 2,
    "canceled": 3,
    "incomplete_expired": 3,
}


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    duplicate: bool
    community_id: str | None
    # applied | stale | ignored | duplicate
    outcome: str


@dataclass(frozen=True)
class Repair:
    """One community whose local subscription the reconciliation changed to match Stripe."""

    community_id: str
    stripe_subscription_id: str
    before: dict[str, Any] | None
    after: dict[str, Any]


class StripeEvents:
    def __init__(self, outbox: Outbox, settings: BillingSettings, stripe: StripeApi) -> None:
        self.outbox = outbox
        self.settings = settings
        self.stripe = stripe
        self.changes = SubscriptionChanges(outbox)
        self.grace = timedelta(days=settings.billing_grace_days)
        # Stripe price id → (plan, interval), to read which plan a subscription pays for.
        self._prices = {
            price: (plan.key, interval)
            for plan in PLANS
            for interval in INTERVALS
            if (price := settings.stripe_price(plan.key, interval))
        }

    # --- webhooks --------------------------------------------------------------------------

    async def subscription_for_checkout(self, event: Event) -> SubscriptionData | None:
        """For `checkout.session.completed`: the subscription it created, read from Stripe
        (before any transaction opens), or None when it cannot be read."""
        if event.type != "checkout.session.completed" or not self.stripe.configured:
            return None
        subscription_id = event.object.get("subscription")
        if event.object.get("mode") != "subscription" or not isinstance(subscription_id, str):
            return None
        return await self.stripe.subscription(subscription_id)

    async def apply_event(
        self,
        session: AsyncSession,
        event: Event,
        *,
        fetched: SubscriptionData | None,
        now: datetime,
    ) -> WebhookOutcome:
        """Applies a verified Stripe event once: a redelivered id changes nothing."""
        repo = BillingRepository(session)
        if not await repo.claim_event(event.id, event.type, event.created):
            log.info("stripe event already handled", stripe_event_id=event.id)
            return WebhookOutcome(event.id, event.type, True, None, "duplicate")
        community_id, outcome = await self._apply(session, event, fetched, now)
        await repo.finish_event(event.id, community_id, outcome)
        log.info(
            "stripe event",
            stripe_event_id=event.id,
            event_type=event.type,
            community_id=community_id,
            outcome=outcome,
        )
        return WebhookOutcome(event.id, event.type, False, community_id, outcome)

    async def _apply(
        self, session: AsyncSession, event: Event, fetched: SubscriptionData | None, now: datetime
    ) -> tuple[str | None, str]:
        cause = Cause(STRIPE_EVENT, event.id, "")
        if event.type == "checkout.session.completed":
            # Read from Stripe after the event, so at least as new as it. Stamped with the
            # event's (Stripe's) time, not this clock, which may be ahead of Stripe's.
            data = fetched or _checkout_session_subscription(event)
            if data is None:
                return _metadata(event.object).get(COMMUNITY_KEY), "ignored"
            return await self.apply_subscription(
                session, data, version=event.created, cause=cause, now=now
            )
        if event.type.startswith("customer.subscription."):
            data = SubscriptionData.parse(event.object)
            return await self.apply_subscription(
                session, data, version=event.created, cause=cause, now=now
            )
        if event.type in ("invoice.paid", "invoice.payment_failed"):
            return await self._apply_invoice(session, event, now)
        return None, "ignored"

    def _plan_of(self, data: SubscriptionData) -> tuple[str, str] | None:
        """Which plan and interval a subscription pays for: by its price, else by the plan
        the checkout recorded in its metadata."""
        known = self._prices.get(data.price_id)
        if known:
            return known
        plan, interval = data.metadata.get(PLAN_KEY, ""), data.metadata.get(INTERVAL_KEY, "")
        if plan in PAID_PLANS and interval in INTERVALS:
            return plan, interval
        return None

    async def apply_subscription(
        self,
        session: AsyncSession,
        data: SubscriptionData,
        *,
        version: datetime,
        cause: Cause,
        now: datetime,
    ) -> tuple[str | None, str]:
        """Makes the community's row say what `data` (Stripe's state as of `version`) says,
        unless the row already holds newer data. Returns the community and the outcome.
        Without a reason, `cause` records the status Stripe reported."""
        repo = BillingRepository(session)
        community_id = await _holder_of(repo, data)
        if community_id is None or not is_community_id(community_id):
            log.warning("stripe subscription names no community", stripe_subscription_id=data.id)
            return None, "ignored"
        plan_interval = self._plan_of(data)
        if plan_interval is None or data.status not in _STATUS_RANK:
            log.warning(
                "stripe subscription of an unknown price or status",
                stripe_subscription_id=data.id,
                price_id=data.price_id,
                status=data.status,
            )
            return community_id, "ignored"
        row = await repo.lock_subscription(community_id)
        before = Before.of(row, await repo.get_plan(community_id), now)
        if row is not None and row.stripe_subscription_id != data.id:
            if not self._replaces(row, data, now):
                return community_id, "stale"
            await repo.drop_subscription(row)
            row = None
        elif row is not None and _is_older(row, data, version):
            return community_id, "stale"
        is_new = row is None
        if row is None:
            row = _new_subscription(community_id, data, version)
            if data.metadata.get(COMPANY_KEY) == community_id:
                row.holder = COMPANY
                row.owner_community_id = data.community_id[:64] or None
        row.plan, row.interval = plan_interval
        self._copy_stripe_state(row, data, version)
        if is_new:
            await repo.add_subscription(row)
        await session.flush()
        if not cause.reason:
            cause = Cause(cause.source, cause.stripe_event_id, f"Stripe says {data.status}")
        await self.changes.record(session, row, before, cause, now)
        return community_id, "applied"

    def _copy_stripe_state(
        self, row: Subscription, data: SubscriptionData, version: datetime
    ) -> None:
        row.stripe_customer_id = data.customer_id or row.stripe_customer_id or ""
        row.status = data.status
        if data.current_period_end is not None:
            row.current_period_end = data.current_period_end
        row.cancel_at_period_end = data.cancel_at_period_end
        row.trial_end = data.trial_end
        row.stripe_version_at = max(row.stripe_version_at, version)
        self._track_payment_state(row, version)

    def _replaces(self, row: Subscription, data: SubscriptionData, now: datetime) -> bool:
        """A different subscription for the same community takes over when the current one
        is over, or when it is the newer of two live ones (e.g. two checkouts completed)."""
        if data.status in ENDED_STATUSES:
            return False
        if subscribed_plan(row, now) is None or row.status in ENDED_STATUSES:
            return True
        return data.created > row.subscription_created_at

    def _track_payment_state(self, row: Subscription, since: datetime) -> None:
        """Starts the grace period when a subscription becomes past due, and ends it (and any
        lapse) when it is paid again."""
        if row.status in PAST_DUE_STATUSES:
            if row.past_due_since is None:
                row.past_due_since = since
                row.grace_until = since + self.grace
        else:
            row.past_due_since = None
            row.grace_until = None
            row.lapsed_at = None

    async def _apply_invoice(
        self, session: AsyncSession, event: Event, now: datetime
    ) -> tuple[str | None, str]:
        invoice = event.object
        repo = BillingRepository(session)
        row = await repo.lock_subscription_by_stripe_id(invoice_subscription_id(invoice))
        if row is None:
            return None, "ignored"
        before = Before.of(row, await repo.get_plan(row.community_id), now)
        new_status = _status_after_invoice(event.type, row.status)
        outcome = "unchanged"
        if new_status is not None and event.created < row.stripe_version_at:
            # The row already holds newer data than this invoice event.
            outcome = "stale"
        elif new_status is not None:
            row.status = new_status
            row.stripe_version_at = event.created
            self._track_payment_state(row, event.created)
            await session.flush()
            verb = "paid" if event.type == "invoice.paid" else "payment failed"
            cause = Cause(STRIPE_EVENT, event.id, f"invoice {invoice.get('id')} {verb}")
            await self.changes.record(session, row, before, cause, now)
            outcome = "applied"
        renewal = (
            event.type == "invoice.paid" and invoice.get("billing_reason") == "subscription_cycle"
        )
        # A paid renewal is announced once, whatever order its events came in.
        if renewal and await self._announce_renewal(session, row, str(invoice.get("id") or "")):
            outcome = "applied"
        return row.community_id, outcome

    async def _announce_renewal(
        self, session: AsyncSession, row: Subscription, invoice_id: str
    ) -> bool:
        if not invoice_id or row.last_renewal_invoice_id == invoice_id:
            return False
        event_id = uuid.uuid5(_RENEWAL_NAMESPACE, invoice_id)
        # An older invoice announced before (its event still in the outbox): not again. Once
        # pruned, consumers still know the event id, and xp keys renewals by invoice.
        if await BillingRepository(session).event_queued(event_id):
            return False
        row.last_renewal_invoice_id = invoice_id
        # A company's subscription: the points go to the payer in the community they paid from.
        meta = new_meta(row.owner_community_id or row.community_id)
        meta.event_id = str(event_id)
        await self.outbox.add(
            session,
            SUBSCRIPTION_RENEWED,
            events_pb2.SubscriptionRenewed(
                meta=meta, owner_user_id=row.owner_user_id, invoice_id=invoice_id
            ),
        )
        await session.flush()
        log.info("subscription renewed", invoice_id=invoice_id)
        return True

    # --- billing checks --------------------------------------------------------------------

    async def lapse_overdue(self, session: AsyncSession, now: datetime) -> list[str]:
        """Drops past-due communities whose grace period is over to free (announced and
        recorded once each). Returns their ids."""
        repo = BillingRepository(session)
        lapsed = []
        days = self.settings.billing_grace_days
        for row in await repo.lock_overdue(now):
            # What it had until its grace ended (the reads already say free since then).
            last_graced = (row.grace_until or now) - timedelta(microseconds=1)
            before = Before.of(row, await repo.get_plan(row.community_id), min(now, last_graced))
            row.lapsed_at = now
            await session.flush()
            reason = f"past due since {iso(row.past_due_since)}, beyond the {days}-day grace period"
            await self.changes.record(
                session, row, before, Cause("billing_checks", None, reason), now
            )
            lapsed.append(row.community_id)
        return lapsed

    async def reconcile_one(
        self, session: AsyncSession, data: SubscriptionData, now: datetime
    ) -> Repair | None:
        """Repairs the community's row when Stripe (read at `now`) says otherwise."""
        repo = BillingRepository(session)
        community_id = await _holder_of(repo, data)
        if not community_id:
            return None
        current = await repo.subscription(community_id)
        if current is not None and self._agrees(current, data):
            # Nothing to repair; the row keeps its Stripe timestamp (this clock may run ahead
            # of Stripe's, and a newer stamp would make the next real event look stale).
            return None
        assignment = await repo.get_plan(community_id)
        before = Before.of(current, assignment, now).state
        cause = Cause("reconciliation", None, f"reconciled with Stripe: {data.status}")
        _, outcome = await self.apply_subscription(session, data, version=now, cause=cause, now=now)
        if outcome != "applied":
            return None
        row = await repo.subscription(community_id)
        after = subscription_state(row, effective_plan(assignment, row, now))
        if after is None or before == after:
            return None
        return Repair(community_id, data.id, before, after)

    def _agrees(self, row: Subscription, data: SubscriptionData) -> bool:
        """True when the row already says what Stripe's `data` says."""
        return (
            row.stripe_subscription_id == data.id
            and row.status == data.status
            and (row.plan, row.interval) == self._plan_of(data)
            and row.cancel_at_period_end == data.cancel_at_period_end
            and (
                data.current_period_end is None or row.current_period_end == data.current_period_end
            )
        )


async def _holder_of(repo: BillingRepository, data: SubscriptionData) -> str | None:
    """What a Stripe subscription pays for: the row that already holds it (a community's
    subscription may have moved to its company since Stripe's metadata was written), else the
    company or community its checkout named."""
    return (
        await repo.community_of_subscription(data.id)
        or data.metadata.get(COMPANY_KEY)
        or data.community_id
        or None
    )


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    raw = obj.get("metadata")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _checkout_session_subscription(event: Event) -> SubscriptionData | None:
    """Without an API key to read the subscription, the session itself says enough: paid
    means active, on the plan and interval the checkout recorded. None when the session did
    not start a subscription."""
    obj = event.object
    subscription_id = obj.get("subscription")
    if obj.get("mode") != "subscription" or not isinstance(subscription_id, str):
        return None
    paid = obj.get("payment_status") in ("paid", "no_payment_required")
    return SubscriptionData(
        id=subscription_id,
        customer_id=str(obj.get("customer") or ""),
        status="active" if paid else "incomplete",
        price_id="",
        metadata=_metadata(obj),
        created=from_unix(obj.get("created")) or event.created,
        current_period_end=None,
        cancel_at_period_end=False,
        trial_end=None,
    )


def _new_subscription(community_id: str, data: SubscriptionData, version: datetime) -> Subscription:
    return Subscription(
        community_id=community_id,
        stripe_subscription_id=data.id,
        owner_account_id=data.metadata.get(OWNER_ACCOUNT_KEY, "")[:64],
        owner_user_id=data.metadata.get(OWNER_USER_KEY, "")[:64],
        subscription_created_at=data.created,
        stripe_version_at=version,
    )


def _status_after_invoice(event_type: str, status: str) -> str | None:
    """The status an invoice event moves a subscription to; None when it moves nothing."""
    if event_type == "invoice.payment_failed" and status in PAID_STATUSES:
        return "past_due"
    if event_type == "invoice.paid" and status in PAST_DUE_STATUSES:
        return "active"
    return None


def _is_older(row: Subscription, data: SubscriptionData, version: datetime) -> bool:
    """True when `data` (as of `version`) is older than what the row holds: a subscription
    never moves backwards, whatever order Stripe's events arrive in."""
    if row.status in ENDED_STATUSES and data.status not in ENDED_STATUSES:
        return True
    if version != row.stripe_version_at:
        return version < row.stripe_version_at
    # The same second: the later period, then the status further along, is the newer one.
    if (
        data.current_period_end
        and row.current_period_end
        and data.current_period_end != row.current_period_end
    ):
        return data.current_period_end < row.current_period_end
    return _STATUS_RANK[data.status] < _STATUS_RANK[row.status]
