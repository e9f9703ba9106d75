"""The xp context: leaderboards and who may read them, rank cards, XP history, the XP rules, adjustments, points,
imports, the activity intake and analytics, served by the xp service."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.xp.controller import (
    ActivitiesController,
    AnalyticsController,
    CommunityController,
    ImportsController,
    LeaderboardSettingsController,
    PointsController,
    XpAdjustmentController,
    XpConfigController,
)

ROUTES: list[ControllerRouterHandler] = [
    CommunityController,
    LeaderboardSettingsController,
    ActivitiesController,
    AnalyticsController,
    PointsController,
    ImportsController,
    XpConfigController,
    XpAdjustmentController,
]
