"""Tiers: the plan billing says a community is on, the features it unlocks, and the gates that
answer 402 naming the plan a feature needs (ARCHITECTURE.md §6)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.tiers.controller import (
    AnalyticsController,
    CommunityPlanController,
    PlansController,
)

TIER_ROUTES: list[ControllerRouterHandler] = [
    PlansController,
    CommunityPlanController,
    AnalyticsController,
]
