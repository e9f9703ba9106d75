"""Request and response bodies of plans, a community's plan, and its analytics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

PlanName = Literal["free", "premium", "enterprise"]


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


class DailyActivity(msgspec.Struct):
    # The UTC day.
    day: date
    # Activities recorded that day, including those that earned nothing (cooldown, …).
    activities: int
    xp: int
    # Members who earned XP that day.
    active_members: int
    # Activities per kind: "message", "post", "reaction", "custom:<name>".
    activities_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    # Members xp saw for the first time that day.
    new_members: int = 0
    # Ledger entries that day that raised a member's level.
    level_ups: int = 0


class Mover(msgspec.Struct):
    user_id: str
    # XP gained in the window.
    xp: int


class Analytics(msgspec.Struct):
    community_id: str
    # Every UTC day of the window, oldest first; days without activity are zeros.
    days: list[DailyActivity]
    # Members who gained the most XP in the window, most first (at most 10).
    top_movers: list[Mover] = msgspec.field(default_factory=list)
