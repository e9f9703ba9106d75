"""Request and response bodies of plans, a community's plan, checkout, the billing portal,
subscriptions and Stripe webhook acknowledgements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

PlanName = Literal["free", "premium", "enterprise"]

# An absolute http(s) URL a Stripe page sends the browser back to; billing checks it fully.
RedirectUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://\S+$")]


class CheckoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    plan: Literal["premium", "enterprise"]
    interval: Literal["monthly", "yearly"]
    # Where Stripe sends the owner after paying, and after giving up.
    success_url: RedirectUrl
    cancel_url: RedirectUrl


class CheckoutStarted(msgspec.Struct):
    # Send the owner's browser here (Stripe Checkout).
    url: str
    session_id: str


class PortalRequest(msgspec.Struct, forbid_unknown_fields=True):
    # Where the portal's "return" link leads; Stripe's default when absent.
    return_url: RedirectUrl | None = None


class PortalOpened(msgspec.Struct):
    # Send the owner's browser here (Stripe Customer Portal).
    url: str


class SubscriptionView(msgspec.Struct):
    community_id: str
    # The plan in effect now (free once a past-due subscription's grace period is over).
    plan: str
    # free (never subscribed) | stripe | manual (assigned by a platform admin)
    source: Literal["free", "stripe", "manual"]
    # trialing | active | past_due | unpaid | paused | canceled | incomplete | incomplete_expired
    status: str
    # The plan and interval paid for through Stripe.
    subscribed_plan: str | None = None
    interval: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    # While past due: paid features last until then.
    grace_until: datetime | None = None


class StripeWebhookAck(msgspec.Struct):
    # processed | duplicate (this event id was handled before; nothing changed)
    status: Literal["processed", "duplicate"]
    event_id: str
    type: str


class PlanPrice(msgspec.Struct):
    # monthly | yearly
    interval: str
    # In minor units of the currency (cents).
    amount_minor: int
    # ISO 4217, lower-case (e.g. "usd").
    currency: str


class PlanView(msgspec.Struct):
    plan: str
    name: str
    description: str
    # Feature keys the plan unlocks, e.g. "analytics".
    features: list[str]
    # Empty until plans are sold through Stripe.
    prices: list[PlanPrice]
    trial_days: int


class PlanList(msgspec.Struct):
    # Cheapest first; each plan unlocks everything the ones before it do.
    plans: list[PlanView]


class CommunityPlan(msgspec.Struct):
    community_id: str
    plan: str
    features: list[str]
    # active | trialing | past_due | canceled | incomplete
    status: str


class CommunityPlanChange(msgspec.Struct, forbid_unknown_fields=True):
    plan: PlanName
    # Why: kept by billing and in the audit log.
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")]


class CommunityPlanChanged(CommunityPlan):
    # The plan the community was on before this change.
    previous_plan: str


# A group's id, as billing makes it: `grp_` and 24 hex digits.
GroupId = Annotated[str, msgspec.Meta(pattern=r"^grp_[0-9a-f]{24}$")]


class GroupCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class GroupView(msgspec.Struct):
    # The group's company id: its communities' enterprise plan is held under it.
    group_id: str
    name: str


class GroupMembership(msgspec.Struct):
    group_id: str
    community_id: str
    # Whether the community is in the group now.
    member: bool
    # False when it already was (or was not) in the group.
    changed: bool
