"""The gateway application: one folder per bounded context under `api/`, each exporting its
`ROUTES`; `create_app` serves them all."""

from __future__ import annotations

from litestar import Litestar

from wee5_gateway.api import (
    accounts,
    benchmarks,
    billing,
    communities,
    companies,
    discord,
    health,
    resources,
    rewards,
    setup,
    stream,
    webhooks,
    xp,
)
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.runtime import build_app
from wee5_gateway.demo import demo_lifespan
from wee5_gateway.web.card_fonts import check_fonts
from wee5_gateway.web.routes import ROUTES as PAGES
from wee5_gateway.web.routes import template_config

# Webhooks are served apart: their signature is their credential (`build_app`).
CONTEXTS = (
    health,
    accounts,
    communities,
    xp,
    companies,
    rewards,
    discord,
    benchmarks,
    resources,
    billing,
    setup,
    stream,
)


def create_app(settings: GatewaySettings | None = None) -> Litestar:
    settings = settings or GatewaySettings()
    check_fonts()
    return build_app(
        settings,
        routes=[route for context in CONTEXTS for route in context.ROUTES] + PAGES,
        signed_routes=webhooks.ROUTES,
        template_config=template_config(),
        lifespans=[
            webhooks.whop_intake_lifespan(settings),
            stream.live_feed_lifespan(settings),
            billing.entitlements_invalidation_lifespan(),
            demo_lifespan(settings),
        ],
    )
