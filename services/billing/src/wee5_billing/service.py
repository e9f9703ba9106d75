"""What a community's plan gives it, and how it changes hands: entitlements, a platform
admin's plan assignment, Stripe checkout and the billing portal.

The plans themselves are in `plans.py`; Stripe's events are applied by `stripe_events.py`.
Functions here work inside the caller's transaction and never commit (the servicer does).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_billing.config import BillingSettings
from wee5_billing.coverage import coverage_of
from wee5_billing.errors import (
    AlreadySubscribed,
    CommunityRequired,
    InvalidRequest,
    NoStripeCustomer,
    NotThePayingOwner,
    PriceNotConfigured,
    StripeNotConfigured,
)
from wee5_billing.models import INTERVALS, CommunityPlan, Subscription
from wee5_billing.plans import (
    DEFAULT_PLAN,
    PAID_PLANS,
    PLANS,
    PLANS_BY_KEY,
    Plan,
    dearer,
    effective_plan,
    plan_for,
    subscribed_plan,
)
from wee5_billing.repository import BillingRepository
from wee5_billing.stripe_api import (
    COMMUNITY_KEY,
    COMPANY_KEY,
    INTERVAL_KEY,
    OWNER_ACCOUNT_KEY,
    OWNER_USER_KEY,
    PLAN_KEY,
    CheckoutSession,
    StripeApi,
)
from wee5_billing.subscription_changes import MAX_REASON, SubscriptionChanges
from wee5_kit.communities import is_community_id
from wee5_kit.events import Outbox
from wee5_kit.logging import get_logger

log = get_logger("wee5.billing")

MAX_URL = 2048
# The plan a company holds for all its communities (ARCHITECTURE.md §6).
COMPANY_PLAN = "enterprise"


@dataclass(frozen=True)
class Entitlements:
    community_id: str
    plan: Plan
    status: str
    grace_until: datetime | None = None
    # The community's company, and the plan its subscription gives (free without one).
    company_id: str | None = None
    company_plan: Plan = DEFAULT_PLAN


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
class CheckoutRequest:
    """An owner's request to pay for `plan_key` for their community, as the caller sent it."""

    community_id: str
    owner_account_id: str
    owner_user_id: str
    owner_email: str
    plan_key: str
    interval: str
    success_url: str
    cancel_url: str
    # The caller's retry key: the same request and key give the same Stripe session.
    idempotency_key: str


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


def _require_community(community_id: str) -> None:
    """The one community id rule (`wee5_kit.communities`), named for this API's field."""
    if not is_community_id(community_id):
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


def _check_checkout(request: CheckoutRequest) -> None:
    """Refuses a malformed checkout request, before anything is read or asked of Stripe."""
    _require_community(request.community_id)
    _require_account(request.owner_account_id)
    if (
        len(request.owner_user_id) > 64
        or len(request.owner_email) > 320
        or len(request.idempotency_key) > 200
    ):
        raise InvalidRequest(
            "owner_user_id (64), owner_email (320) or idempotency_key (200) is too long"
        )
    if request.plan_key not in PAID_PLANS:
        raise InvalidRequest(f"plan must be one of {', '.join(PAID_PLANS)}")
    if request.interval not in INTERVALS:
        raise InvalidRequest("interval must be monthly or yearly")
    redirect_url(request.success_url, "success_url")
    redirect_url(request.cancel_url, "cancel_url")


class BillingService:
    def __init__(self, outbox: Outbox, settings: BillingSettings, stripe: StripeApi) -> None:
        self.settings = settings
        self.stripe = stripe
        self.changes = SubscriptionChanges(outbox)

    def plans(self) -> tuple[Plan, ...]:
        return PLANS

    def price_id(self, plan: str, interval: str) -> str | None:
        return self.settings.stripe_price(plan, interval)

    # --- reading -----------------------------------------------------------------------

    async def entitlements(
        self, session: AsyncSession, community_id: str, now: datetime
    ) -> Entitlements:
        """The community's plan and what it unlocks: the dearer of its own and its company's;
        free when it never had one."""
        _require_community(community_id)
        coverage = await coverage_of(BillingRepository(session), community_id)
        plan = self._at_least_dev_plan(coverage.plan(now))
        status, grace = coverage.status(now)
        return Entitlements(
            community_id,
            plan,
            status,
            grace,
            company_id=coverage.company_id,
            company_plan=coverage.company_plan(now),
        )

    async def subscription(
        self, session: AsyncSession, community_id: str, now: datetime
    ) -> CommunitySubscription:
        _require_community(community_id)
        repo = BillingRepository(session)
        assignment = await repo.get_plan(community_id)
        row = await repo.subscription(community_id)
        return CommunitySubscription(
            community_id, row, assignment, self._in_effect(assignment, row, now)
        )

    def _in_effect(
        self, assignment: CommunityPlan | None, row: Subscription | None, now: datetime
    ) -> Plan:
        """The community's plan in effect; locally, at least the one WEE5_DEV_PLAN names."""
        return self._at_least_dev_plan(effective_plan(assignment, row, now))

    def _at_least_dev_plan(self, plan: Plan) -> Plan:
        if self.settings.dev_plan is None:
            return plan
        return dearer(plan, plan_for(self.settings.dev_plan))

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
        """Assigns `plan_key` to the community (or to a company or group, covering all its
        communities) and, when that changes its plan, queues `billing.subscription.changed`
        (for each community covered) in the same transaction. Setting the plan it is already
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
        effective_before = dearer(previous, subscribed_plan(row, now) or DEFAULT_PLAN)
        assignment = await repo.assign_plan(community_id, plan.key, assigned_by, reason.strip())
        effective = effective_plan(assignment, row, now)
        if effective != effective_before:
            # A company's (or group's) plan covers its communities: each hears of it.
            covered = await repo.communities_of(community_id)
            for covered_id in covered or [community_id]:
                await self.changes.announce(session, covered_id, now)
        return PlanChange(previous, assignment, effective)

    # --- checkout and portal -------------------------------------------------------------

    async def plan_checkout(
        self, session: AsyncSession, request: CheckoutRequest, now: datetime
    ) -> CheckoutPlan:
        """Checks a checkout request and works out the Stripe session to create: its price,
        the owner's customer (if one exists yet), metadata and idempotency key.

        The community and its owner go into the session's and the subscription's metadata,
        which is how the webhooks later know whose plan to change."""
        _check_checkout(request)
        if not self.stripe.configured:
            raise StripeNotConfigured()
        price_id = self.price_id(request.plan_key, request.interval)
        if price_id is None:
            raise PriceNotConfigured(request.plan_key, request.interval)
        repo = BillingRepository(session)
        # Enterprise is a company's plan: for a community of a company, checkout buys it for
        # the company (one subscription covering every community of it).
        company_id = (
            await repo.company_of(request.community_id)
            if request.plan_key == COMPANY_PLAN
            else None
        )
        # One subscription per payer: the company's, or the community's own. (A premium
        # community may buy enterprise for its company; its own premium stays its own.)
        current = await repo.subscription(company_id or request.community_id)
        if current is not None and subscribed_plan(current, now) is not None:
            raise AlreadySubscribed(
                current.plan, current.status, "company" if company_id else "community"
            )
        # Same request (or same caller key) → same key → Stripe answers with the same session.
        digest = hashlib.sha256(
            "\n".join(
                (
                    company_id or "",
                    request.community_id,
                    request.owner_account_id,
                    price_id,
                    request.success_url,
                    request.cancel_url,
                    request.idempotency_key,
                )
            ).encode()
        ).hexdigest()
        return CheckoutPlan(
            owner_account_id=request.owner_account_id,
            owner_email=request.owner_email,
            customer_id=await repo.customer_of(request.owner_account_id),
            price_id=price_id,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            metadata={
                COMMUNITY_KEY: request.community_id,
                OWNER_ACCOUNT_KEY: request.owner_account_id,
                OWNER_USER_KEY: request.owner_user_id,
                PLAN_KEY: request.plan_key,
                INTERVAL_KEY: request.interval,
                **({COMPANY_KEY: company_id} if company_id else {}),
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
        coverage = await coverage_of(BillingRepository(session), community_id)
        row = coverage.own or coverage.company_subscription
        if row is None:
            raise NoStripeCustomer()
        if row.owner_account_id != owner_account_id:
            raise NotThePayingOwner()
        return row.stripe_customer_id
