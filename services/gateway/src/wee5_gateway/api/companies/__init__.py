"""Companies: a company's board across its communities, its member cards, and each
community's choice to count on it (served by xp)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.companies.controller import CompanyBoardSettingController, CompanyController

ROUTES: list[ControllerRouterHandler] = [CompanyController, CompanyBoardSettingController]
