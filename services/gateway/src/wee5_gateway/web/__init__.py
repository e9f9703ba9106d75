"""The pages: server-rendered views on the gateway, one origin with the API (Whop adds its
user token only to same-origin requests). Each view is a module here with its controllers
and templates under `templates/<view>/`; `site.py` serves them at Whop's paths and under
`/app`. Pages call the same downstream services and access rules as the JSON routes."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.web.app_home import AppHomeController
from wee5_gateway.web.dashboard import (
    ApiKeysPageController,
    AuditPageController,
    BillingPageController,
    DashboardHomeController,
    OverviewController,
)
from wee5_gateway.web.site import page_routers, template_config

# A member's views of a community: `/experiences/{community_id}…` (and under /app).
MEMBER_VIEWS: list[ControllerRouterHandler] = []
# An admin's views of a community, relative to it (`/{community_id}…`): under Whop's
# `/dashboard/{company_id}` and under `/app/dashboard`.
ADMIN_VIEWS: list[ControllerRouterHandler] = [
    OverviewController,
    BillingPageController,
    ApiKeysPageController,
    AuditPageController,
]
# Only in Whop: the company's dashboard home and the discover view.
WHOP_ONLY: list[ControllerRouterHandler] = [DashboardHomeController]
# Only outside Whop: the email sign-in and the caller's communities.
APP_ONLY: list[ControllerRouterHandler] = [AppHomeController]

ROUTES = page_routers(
    member_views=MEMBER_VIEWS, admin_views=ADMIN_VIEWS, whop_only=WHOP_ONLY, app_only=APP_ONLY
)

__all__ = ["ROUTES", "template_config"]
