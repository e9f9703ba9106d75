"""Billing through Stripe: checkout, the customer portal and a community's subscription (the
Stripe webhook intake is in routes/webhooks.py), and keeping the entitlement cache fresh when
billing announces a change."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.billing.controller import BillingController
from wee5_gateway.billing.invalidation import entitlements_invalidation_lifespan

BILLING_ROUTES: list[ControllerRouterHandler] = [BillingController]

__all__ = ["BILLING_ROUTES", "BillingController", "entitlements_invalidation_lifespan"]
