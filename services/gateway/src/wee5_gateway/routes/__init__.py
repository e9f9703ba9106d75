"""HTTP routes, one Controller per area. `ROUTES` is what the app serves."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.accounts.controller import AccountController
from wee5_gateway.benchmarks import BENCHMARK_ROUTES
from wee5_gateway.billing import BILLING_ROUTES
from wee5_gateway.communities.controller import (
    ActivitiesController,
    ApiKeysController,
    AuditLogController,
    RolesController,
)
from wee5_gateway.points.controller import ImportsController, PointsController
from wee5_gateway.resources import ResourcesController, ResourceSettingsController
from wee5_gateway.rewards import REWARD_ROUTES
from wee5_gateway.routes.communities import CommunityController
from wee5_gateway.routes.health import HealthController
from wee5_gateway.routes.webhooks import WebhookController
from wee5_gateway.routes.xp import XpAdjustmentController, XpConfigController
from wee5_gateway.stream import StreamController
from wee5_gateway.tiers import TIER_ROUTES

ROUTES: list[ControllerRouterHandler] = [
    HealthController,
    WebhookController,
    CommunityController,
    RolesController,
    ApiKeysController,
    AuditLogController,
    ActivitiesController,
    AccountController,
    StreamController,
    *TIER_ROUTES,
    *BENCHMARK_ROUTES,
    ResourcesController,
    ResourceSettingsController,
    *BILLING_ROUTES,
    *REWARD_ROUTES,
    PointsController,
    ImportsController,
    XpConfigController,
    XpAdjustmentController,
]
