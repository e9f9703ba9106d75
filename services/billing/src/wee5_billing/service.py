"""The plans, what each one unlocks, and which plan a community is on.

The plan table below is the one place features are assigned to plans; the gateway learns it
through ListPlans and GetEntitlements. Functions here work inside the caller's transaction and
never commit (the servicer does).

A community's plan comes from two places: a platform admin's assignment (`community_plans`)
and its Stripe subscription (`subscriptions`); the dearer of the two is in effect. A
subscription unlocks its plan while trialing or active, and while past due until its grace
period ends (`WEE5_BILLING_GRACE_DAYS` after the payment failed); the daily billing checks
then mark it lapsed and announce the drop to free.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_billing.config import BillingSettings
from wee5_billing.errors import (
    AlreadySubscribed,
    CommunityRequired,
    InvalidRequest,
    NoStripeCustomer,
    NotThePayingOwner,
    PriceNotConfigured,
    StripeNotConfigured,
    UnknownPlan,
)
from wee5_billing.models import (
    ENDED_STATUSES,
    INTERVALS,
    PAID_STATUSES,
    PAST_DUE_STATUSES,
    CommunityPlan,
    Subscription,
    SubscriptionChange,
)
from wee5_billing.repository import BillingRepository
from wee5_billing.stripe_api import (
    COMMUNITY_KEY,
    OWNER_ACCOUNT_KEY,
    OWNER_USER_KEY,
    CheckoutSession,
    Event,
    StripeApi,
    SubscriptionData,
    from_unix,
    invoice_subscription_id,
)
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import get_logger

log = get_logger("wee5.billing")

SUBSCRIPTION_CHANGED = "billing.subscription.changed"
SUBSCRIPTION_RENEWED = "billing.subscription.renewed"
# The status of a community without a Stripe subscription (on free, or on an assigned plan).
ACTIVE = "active"
MAX_REASON = 500
MAX_URL = 2048
PLAN_KEY = "plan"
INTERVAL_KEY = "interval"
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
class ListPrice:
    """What a plan costs per interval, as shown; the Stripe price of the same plan and
    interval (`WEE5_STRIPE_PRICE_…`) is what checkout charges and should match it."""

    interval: str
    amount_minor: int
    currency: str = "usd"


@dataclass(frozen=True)
class Plan:
    """A plan offered to communities: its key, how it is shown, and the features it unlocks."""

    key: str
    name: str
    description: str
    features: tuple[str, ...]
    prices: tuple[ListPrice, ...] = ()

    def has(self, feature: str) -> bool:
        return feature in self.features


_PREMIUM_FEATURES = ("custom_xp_rates", "analytics", "reward_rules")

# Cheapest first; each plan unlocks everything the plans before it do (ARCHITECTURE.md §6).
PLANS: tuple[Plan, ...] = (
    Plan("free", "Free", "XP, levels, leaderboards and the default level rewards.", ()),
    Plan(
        "premium",
        "Premium",
        "Custom XP rates, community analytics and your own reward rules.",
        _PREMIUM_FEATURES,
        (ListPrice("monthly", 1900), ListPrice("yearly", 19000)),
    ),
    Plan(
        "enterprise",
        "Enterprise",
        "Everything in Premium, plus badges, several communities under one owner and "
        "analytics across them.",
        (*_PREMIUM_FEATURES, "badges", "multi_community", "cross_community_analytics"),
        (ListPrice("monthly", 9900), ListPrice("yearly", 99000)),
    ),
)
PLANS_BY_KEY = {plan.key: plan for plan in PLANS}
DEFAULT_PLAN = PLANS[0]
PAID_PLANS = tuple(plan.key for plan in PLANS if plan.prices)


def plan_for(key: str) -> Plan:
    plan = PLANS_BY_KEY.get(key)
    if plan is None:
        raise UnknownPlan()
    return plan


def cheapest_plan_with(feature: str) -> Plan | None:
    """The first plan (in price order) that unlocks `feature`; None if no plan does."""
    return next((plan for plan in PLANS if plan.has(feature)), None)


def _dearer(a: Plan, b: Plan) -> Plan:
    return a if PLANS.index(a) >= PLANS.index(b) else b


def subscribed_plan(row: Subscription | None, now: datetime) -> Plan | None:
    """The plan a Stripe subscription unlocks at `now`, or None."""
    if row is None or row.lapsed_at is not None:
        return None
    if row.status in PAID_STATUSES:
        return PLANS_BY_KEY[row.plan]
    if row.status in PAST_DUE_STATUSES and row.grace_until is not None and now < row.grace_until:
        return PLANS_BY_KEY[row.plan]
    return None


def effective_plan(
    assignment: CommunityPlan | None, row: Subscription | None, now: datetime
) -> Plan:
    assigned = PLANS_BY_KEY[assignment.plan] if assignment else DEFAULT_PLAN
    subscribed = subscribed_plan(row, now)
    return _dearer(assigned, subscribed) if subscribed else assigned


@dataclass(frozen=True)
class Entitlements:
    community_id: str
    plan: Plan
    status: str
    grace_until: datetime | None = None


@dataclass(frozen=True)
class PlanChange:
    previous: Plan
    assignment: CommunityPlan
    # The plan in effect after the change (a Stripe subscription may keep a dearer one).
    effective: Plan

    @property
    def plan(self) -> Plan:
        return PLANS_BY_KEY[self.assignment.plan]


@dataclass(frozen=True)
class CommunitySubscription:
    """What GetSubscription shows: the Stripe subscription and/or the admin assignment."""

    community_id: str
    subscription: Subscription | None
    assignment: CommunityPlan | None
    effective: Plan


@dataclass(frozen=True)
class CheckoutPlan:
    """A checked checkout request: what to ask Stripe for."""

    owner_account_id: str
    owner_email: str
    # None until the owner's first checkout creates their Stripe customer.
    customer_id: str | None
    price_id: str
    success_url: str
    cancel_url: str
    metadata: dict[str, str]
    idempotency_key: str


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


def _require_community(community_id: str) -> None:
    if not community_id or len(community_id) > 64:
        raise CommunityRequired()


def _require_account(owner_account_id: str) -> None:
    if not owner_account_id or len(owner_account_id) > 64:
        raise InvalidRequest("owner_account_id is required and at most 64 characters")


def redirect_url(value: str, field: str, *, required: bool = True) -> str:
    """An absolute http(s) URL a Stripe page may send the browser back to."""
    if not value and not required:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > MAX_URL:
        raise InvalidRequest(
            f"{field} must be an absolute http(s) URL of at most {MAX_URL} characters"
        )
    return value


def _state(row: Subscription | None, effective: Plan) -> dict[str, Any] | None:
    """A subscription as history rows record it."""
    if row is None:
        return None
    return {
        "stripe_subscription_id": row.stripe_subscription_id,
        "plan": row.plan,
        "interval": row.interval,
        "status": row.status,
        "current_period_end": _iso(row.current_period_end),
        "cancel_at_period_end": row.cancel_at_period_end,
        "grace_until": _iso(row.grace_until),
        "lapsed": row.lapsed_at is not None,
        "effective_plan": effective.key,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class BillingService:
    def __init__(self, outbox: Outbox, settings: BillingSettings, stripe: StripeApi) -> None:
        self.outbox = outbox
        self.settings = settings
        self.stripe = stripe
        self.grace = timedelta(days=settings.billing_grace_days)
        # Stripe price id → (plan, interval), to read which plan a subscription pays for.
        self._prices = {
            price: (plan.key, interval)
            for plan in PLANS
            for interval in INTERVALS
            if (price := settings.stripe_price(plan.key, interval))
        }

    def plans(self) -> tuple[Plan, ...]:
        return PLANS

    def price_id(self, plan: str, interval: str) -> str | None:
        return self.settings.stripe_price(plan, interval)

    # --- reading -----------------------------------------------------------------------

    async def entitlements(
        self, session: AsyncSession, community_id: str, now: datetime
    ) -> Entitlements:
        """The community's plan and what it unlocks; free when it never had one."""
        _require_community(community_id)
        repo = BillingRepository(session)
        assignment = await repo.get_plan(community_id)
        row = await repo.subscription(community_id)
        plan = effective_plan(assignment, row, now)
        if row is None:
            return Entitlements(community_id, plan, ACTIVE)
        grace = row.grace_until if row.status in PAST_DUE_STATUSES else None
        return Entitlements(community_id, plan, row.status, grace)

    async def subscription(
        self, session: AsyncSession, community_id: str, now: datetime
    ) -> CommunitySubscription:
        _require_community(community_id)
        repo = BillingRepository(session)
        assignment = await repo.get_plan(community_id)
        row = await repo.subscription(community_id)
        return CommunitySubscription(
            community_id, row, assignment, effective_plan(assignment, row, now)
        )

    async def assignment(self, session: AsyncSession, community_id: str) -> CommunityPlan | None:
        """The plan a platform admin assigned, or None for a community on the implicit free."""
        _require_community(community_id)
        return await BillingRepository(session).get_plan(community_id)

    # --- platform admins ---------------------------------------------------------------

    async def set_plan(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        plan_key: str,
        assigned_by: str,
        reason: str,
        now: datetime,
    ) -> PlanChange:
        """Assigns `plan_key` to the community and, when that changes its plan, queues
        `billing.subscription.changed` in the same transaction. Setting the plan it is already
        on records who and why, and publishes nothing (a retried call changes nothing twice)."""
        _require_community(community_id)
        plan = plan_for(plan_key)
        if not assigned_by or len(assigned_by) > 64:
            raise InvalidRequest("admin_user_id is required and at most 64 characters")
        if not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidRequest(f"reason is required and at most {MAX_REASON} characters")
        repo = BillingRepository(session)
        previous = PLANS_BY_KEY[await repo.lock_plan(community_id, DEFAULT_PLAN.key, assigned_by)]
        row = await repo.subscription(community_id)
        effective_before = _dearer(previous, subscribed_plan(row, now) or DEFAULT_PLAN)
        assignment = await repo.assign_plan(community_id, plan.key, assigned_by, reason.strip())
        effective = effective_plan(assignment, row, now)
        if effective != effective_before:
            await self._announce_change(session, community_id, effective, row)
        return PlanChange(previous, assignment, effective)

    # --- checkout and portal -------------------------------------------------------------

    async def plan_checkout(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        owner_account_id: str,
        owner_user_id: str,
        owner_email: str,
        plan_key: str,
        interval: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
        now: datetime,
    ) -> CheckoutPlan:
        """Checks a checkout request and works out the Stripe session to create: its price,
        the owner's customer (if one exists yet), metadata and idempotency key.

        The community and its owner go into the session's and the subscription's metadata,
        which is how the webhooks later know whose plan to change."""
        _require_community(community_id)
        _require_account(owner_account_id)
        if len(owner_user_id) > 64 or len(owner_email) > 320 or len(idempotency_key) > 200:
            raise InvalidRequest(
                "owner_user_id (64), owner_email (320) or idempotency_key (200) is too long"
            )
        if plan_key not in PAID_PLANS:
            raise InvalidRequest(f"plan must be one of {', '.join(PAID_PLANS)}")
        if interval not in INTERVALS:
            raise InvalidRequest("interval must be monthly or yearly")
        redirect_url(success_url, "success_url")
        redirect_url(cancel_url, "cancel_url")
        if not self.stripe.configured:
            raise StripeNotConfigured()
        price_id = self.price_id(plan_key, interval)
        if price_id is None:
            raise PriceNotConfigured(plan_key, interval)
        repo = BillingRepository(session)
        current = await repo.subscription(community_id)
        if current is not None and subscribed_plan(current, now) is not None:
            raise AlreadySubscribed(current.plan, current.status)
        # Same request (or same caller key) → same key → Stripe answers with the same session.
        digest = hashlib.sha256(
            "\n".join(
                (community_id, owner_account_id, price_id, success_url, cancel_url, idempotency_key)
            ).encode()
        ).hexdigest()
        return CheckoutPlan(
            owner_account_id=owner_account_id,
            owner_email=owner_email,
            customer_id=await repo.customer_of(owner_account_id),
            price_id=price_id,
            success_url=success_url,
            cancel_url=cancel_url,
            metadata={
                COMMUNITY_KEY: community_id,
                OWNER_ACCOUNT_KEY: owner_account_id,
                OWNER_USER_KEY: owner_user_id,
                PLAN_KEY: plan_key,
                INTERVAL_KEY: interval,
            },
            idempotency_key=f"wee5-checkout-{digest}",
        )

    async def keep_customer(
        self, session: AsyncSession, owner_account_id: str, stripe_customer_id: str
    ) -> str:
        """Stores the owner's Stripe customer; the one stored first wins (two concurrent first
        checkouts created the same one anyway: same idempotency key)."""
        return await BillingRepository(session).save_customer(owner_account_id, stripe_customer_id)

    async def create_checkout(self, plan: CheckoutPlan, customer_id: str) -> CheckoutSession:
        checkout = await self.stripe.create_checkout_session(
            customer_id=customer_id,
            price_id=plan.price_id,
            success_url=plan.success_url,
            cancel_url=plan.cancel_url,
            metadata=plan.metadata,
            idempotency_key=plan.idempotency_key,
        )
        log.info(
            "checkout started",
            session_id=checkout.id,
            plan=plan.metadata[PLAN_KEY],
            interval=plan.metadata[INTERVAL_KEY],
        )
        return checkout

    async def portal_customer(
        self, session: AsyncSession, *, community_id: str, owner_account_id: str, return_url: str
    ) -> str:
        """The Stripe customer whose Customer Portal the caller may open for the community."""
        _require_community(community_id)
        _require_account(owner_account_id)
        redirect_url(return_url, "return_url", required=False)
        if not self.stripe.configured:
            raise StripeNotConfigured()
        row = await BillingRepository(session).subscription(community_id)
        if row is None:
            raise NoStripeCustomer()
        if row.owner_account_id != owner_account_id:
            raise NotThePayingOwner()
        return row.stripe_customer_id

    # --- Stripe webhooks -----------------------------------------------------------------

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
            community_id = None
            log.info("stripe event already handled", stripe_event_id=event.id)
            return WebhookOutcome(event.id, event.type, True, community_id, "duplicate")
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
        obj = event.object
        if event.type == "checkout.session.completed":
            if fetched is not None:
                # Read from Stripe after the event, so at least as new as it. Stamped with the
                # event's (Stripe's) time, not this clock, which may be ahead of Stripe's.
                return await self.apply_subscription(
                    session,
                    fetched,
                    version=event.created,
                    source="stripe_event",
                    stripe_event_id=event.id,
                    now=now,
                )
            return await self._apply_checkout_session(session, event, now)
        if event.type.startswith("customer.subscription."):
            data = SubscriptionData.parse(obj)
            return await self.apply_subscription(
                session,
                data,
                version=event.created,
                source="stripe_event",
                stripe_event_id=event.id,
                now=now,
            )
        if event.type in ("invoice.paid", "invoice.payment_failed"):
            return await self._apply_invoice(session, event, now)
        return None, "ignored"

    async def _apply_checkout_session(
        self, session: AsyncSession, event: Event, now: datetime
    ) -> tuple[str | None, str]:
        """Without an API key to read the subscription, the session itself says enough: paid
        means active, on the plan and interval the checkout recorded."""
        obj = event.object
        raw_metadata = obj.get("metadata")
        metadata = (
            {str(k): str(v) for k, v in raw_metadata.items()}
            if isinstance(raw_metadata, dict)
            else {}
        )
        subscription_id = obj.get("subscription")
        if obj.get("mode") != "subscription" or not isinstance(subscription_id, str):
            return metadata.get(COMMUNITY_KEY), "ignored"
        paid = obj.get("payment_status") in ("paid", "no_payment_required")
        data = SubscriptionData(
            id=subscription_id,
            customer_id=str(obj.get("customer") or ""),
            status="active" if paid else "incomplete",
            price_id="",
            metadata=metadata,
            created=from_unix(obj.get("created")) or event.created,
            current_period_end=None,
            cancel_at_period_end=False,
            trial_end=None,
        )
        return await self.apply_subscription(
            session,
            data,
            version=event.created,
            source="stripe_event",
            stripe_event_id=event.id,
            now=now,
        )

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
        source: str,
        stripe_event_id: str | None,
        now: datetime,
        reason: str = "",
    ) -> tuple[str | None, str]:
        """Makes the community's row say what `data` (Stripe's state as of `version`) says,
        unless the row already holds newer data. Returns the community and the outcome."""
        repo = BillingRepository(session)
        community_id = data.community_id or await repo.community_of_subscription(data.id)
        if not community_id or len(community_id) > 64:
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
        assignment = await repo.get_plan(community_id)
        effective_before = effective_plan(assignment, row, now)
        before = _state(row, effective_before)
        if row is not None and row.stripe_subscription_id != data.id:
            if not self._replaces(row, data, now):
                return community_id, "stale"
            await repo.drop_subscription(row)
            row = None
        elif row is not None and _is_older(row, data, version):
            return community_id, "stale"
        plan, interval = plan_interval
        metadata = data.metadata
        is_new = row is None
        if row is None:
            row = Subscription(
                community_id=community_id,
                stripe_subscription_id=data.id,
                owner_account_id=metadata.get(OWNER_ACCOUNT_KEY, "")[:64],
                owner_user_id=metadata.get(OWNER_USER_KEY, "")[:64],
                subscription_created_at=data.created,
                stripe_version_at=version,
            )
        row.stripe_customer_id = data.customer_id or row.stripe_customer_id or ""
        row.plan, row.interval, row.status = plan, interval, data.status
        if data.current_period_end is not None:
            row.current_period_end = data.current_period_end
        row.cancel_at_period_end = data.cancel_at_period_end
        row.trial_end = data.trial_end
        row.stripe_version_at = max(row.stripe_version_at, version)
        self._track_payment_state(row, version)
        if is_new:
            await repo.add_subscription(row)
        await session.flush()
        await self._record(
            session,
            row,
            assignment,
            effective_before,
            before,
            source,
            stripe_event_id,
            reason or f"Stripe says {data.status}",
            now,
        )
        return community_id, "applied"

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
        assignment = await repo.get_plan(row.community_id)
        effective_before = effective_plan(assignment, row, now)
        before = _state(row, effective_before)
        new_status = None
        if event.type == "invoice.payment_failed" and row.status in PAID_STATUSES:
            new_status = "past_due"
        elif event.type == "invoice.paid" and row.status in PAST_DUE_STATUSES:
            new_status = "active"
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
            await self._record(
                session,
                row,
                assignment,
                effective_before,
                before,
                "stripe_event",
                event.id,
                f"invoice {invoice.get('id')} {verb}",
                now,
            )
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
        meta = new_meta(row.community_id)
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

    async def _record(
        self,
        session: AsyncSession,
        row: Subscription,
        assignment: CommunityPlan | None,
        effective_before: Plan,
        before: dict[str, Any] | None,
        source: str,
        stripe_event_id: str | None,
        reason: str,
        now: datetime,
    ) -> None:
        """History for any change of the row; `billing.subscription.changed` when what the
        community gets (plan, status or period end) changed."""
        effective = effective_plan(assignment, row, now)
        after = _state(row, effective)
        assert after is not None
        if before == after:
            return
        await BillingRepository(session).add_change(
            SubscriptionChange(
                community_id=row.community_id,
                source=source,
                stripe_event_id=stripe_event_id,
                reason=reason[:MAX_REASON],
                before=before,
                after=after,
            )
        )
        announced = ("effective_plan", "status", "current_period_end")
        if before is None or any(before[key] != after[key] for key in announced):
            await self._announce_change(session, row.community_id, effective, row)

    async def _announce_change(
        self, session: AsyncSession, community_id: str, effective: Plan, row: Subscription | None
    ) -> None:
        event = events_pb2.SubscriptionChanged(
            meta=new_meta(community_id), plan=effective.key, status=row.status if row else ACTIVE
        )
        if row is not None and row.current_period_end is not None:
            event.current_period_end.FromDatetime(row.current_period_end)
        await self.outbox.add(session, SUBSCRIPTION_CHANGED, event)

    # --- billing checks --------------------------------------------------------------------

    async def lapse_overdue(self, session: AsyncSession, now: datetime) -> list[str]:
        """Drops past-due communities whose grace period is over to free (announced and
        recorded once each). Returns their ids."""
        repo = BillingRepository(session)
        lapsed = []
        for row in await repo.lock_overdue(now):
            assignment = await repo.get_plan(row.community_id)
            # What it had until its grace ended (the reads already say free since then).
            last_graced = (row.grace_until or now) - timedelta(microseconds=1)
            effective_before = effective_plan(assignment, row, min(now, last_graced))
            before = _state(row, effective_before)
            row.lapsed_at = now
            await session.flush()
            days = self.settings.billing_grace_days
            await self._record(
                session,
                row,
                assignment,
                effective_before,
                before,
                "billing_checks",
                None,
                f"past due since {_iso(row.past_due_since)}, beyond the {days}-day grace period",
                now,
            )
            lapsed.append(row.community_id)
        return lapsed

    async def reconcile_one(
        self, session: AsyncSession, data: SubscriptionData, now: datetime
    ) -> Repair | None:
        """Repairs the community's row when Stripe (read at `now`) says otherwise."""
        repo = BillingRepository(session)
        community_id = data.community_id or await repo.community_of_subscription(data.id)
        if not community_id:
            return None
        current = await repo.subscription(community_id)
        if current is not None and self._agrees(current, data):
            # Nothing to repair; the row keeps its Stripe timestamp (this clock may run ahead
            # of Stripe's, and a newer stamp would make the next real event look stale).
            return None
        assignment = await repo.get_plan(community_id)
        before = _state(current, effective_plan(assignment, current, now))
        _, outcome = await self.apply_subscription(
            session,
            data,
            version=now,
            source="reconciliation",
            stripe_event_id=None,
            now=now,
            reason=f"reconciled with Stripe: {data.status}",
        )
        if outcome != "applied":
            return None
        row = await repo.subscription(community_id)
        after = _state(row, effective_plan(assignment, row, now))
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
