"""Every view, by where it is served (see `site.page_routers`)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.web.app_home import AppHomeController
from wee5_gateway.web.benchmarks import BenchmarkPages, BenchmarkReviewPages
from wee5_gateway.web.company import AppCompanyPage, CompanyPage
from wee5_gateway.web.dashboard import (
    ApiKeysPageController,
    AuditPageController,
    BillingPageController,
    DashboardHomeController,
    OverviewController,
)
from wee5_gateway.web.dashboard_settings import (
    BadgesPage,
    MembersPage,
    RewardsPage,
    XpSettingsPage,
)
from wee5_gateway.web.discover import DiscoverController
from wee5_gateway.web.experience import ExperienceController
from wee5_gateway.web.resources import ResourceAdminPages, ResourcePages
from wee5_gateway.web.site import page_routers, template_config

# A member's views of a community: `/experiences/{community_id}…` (and under /app).
MEMBER_VIEWS: list[ControllerRouterHandler] = [ExperienceController, BenchmarkPages, ResourcePages]
# An admin's views of a community, relative to it (`/{community_id}…`): under Whop's
# `/dashboard/{company_id}` and under `/app/dashboard`.
ADMIN_VIEWS: list[ControllerRouterHandler] = [
    OverviewController,
    BillingPageController,
    ApiKeysPageController,
    AuditPageController,
    XpSettingsPage,
    RewardsPage,
    BadgesPage,
    MembersPage,
    BenchmarkReviewPages,
    ResourceAdminPages,
]
# Only in Whop: the company's dashboard home, its company view and the discover view.
WHOP_ONLY: list[ControllerRouterHandler] = [
    DashboardHomeController,
    CompanyPage,
    DiscoverController,
]
# Only outside Whop: the email sign-in, the caller's communities, the company view at
# /app/companies/{company_id} (and discover at /app/discover).
APP_ONLY: list[ControllerRouterHandler] = [AppHomeController, AppCompanyPage, DiscoverController]

ROUTES = page_routers(
    member_views=MEMBER_VIEWS, admin_views=ADMIN_VIEWS, whop_only=WHOP_ONLY, app_only=APP_ONLY
)

__all__ = ["ROUTES", "template_config"]
