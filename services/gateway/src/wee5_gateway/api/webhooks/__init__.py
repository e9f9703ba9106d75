"""The webhooks context: Whop deliveries (verified here, see whop.py) become xp activities and
membership changes; Stripe deliveries go to billing, which verifies them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.webhooks.controller import WebhookController
from wee5_gateway.api.webhooks.intake import whop_intake_lifespan

ROUTES: list[ControllerRouterHandler] = [WebhookController]

__all__ = ["ROUTES", "whop_intake_lifespan"]
