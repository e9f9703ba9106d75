"""The rewards context: reward rules, the reward ledger, badges, the level-up message and
announcements, served by rewards."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.rewards.announcements import (
    AnnouncementsController,
    AnnouncementSettingsController,
)
from wee5_gateway.api.rewards.controller import (
    BadgesController,
    MemberRewardsController,
    MyRewardsController,
    RewardLedgerController,
    RewardRulesController,
    RewardSettingsController,
)

ROUTES: list[ControllerRouterHandler] = [
    RewardRulesController,
    RewardLedgerController,
    MemberRewardsController,
    MyRewardsController,
    BadgesController,
    RewardSettingsController,
    AnnouncementSettingsController,
    AnnouncementsController,
]
