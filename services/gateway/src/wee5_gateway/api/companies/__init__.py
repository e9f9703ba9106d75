"""Companies: a company's board across its communities, its member cards, its analytics
across them, shared configuration copied to several of them, and each community's choice to
count on the board."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.companies.controller import (
    CompanyAnalyticsController,
    CompanyBoardSettingController,
    CompanyController,
    SharedConfigController,
)

ROUTES: list[ControllerRouterHandler] = [
    CompanyController,
    CompanyAnalyticsController,
    CompanyBoardSettingController,
    SharedConfigController,
]
