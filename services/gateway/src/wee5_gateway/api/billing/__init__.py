"""The billing context: the plans, a community's plan, Stripe checkout, the customer portal
and the subscription, WEE5 groups (companies outside Whop), served by billing; and keeping the entitlement cache fresh when billing
announces a change."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.billing.controller import (
    BillingController,
    CommunityPlanController,
    PlansController,
)
from wee5_gateway.api.billing.groups import GroupsController
from wee5_gateway.api.billing.invalidation import entitlements_invalidation_lifespan

ROUTES: list[ControllerRouterHandler] = [
    PlansController,
    CommunityPlanController,
    BillingController,
    GroupsController,
]

__all__ = ["ROUTES", "entitlements_invalidation_lifespan"]
