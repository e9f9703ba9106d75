"""The pages: server-rendered views on the gateway, one origin with the API (Whop adds its
user token only to same-origin requests). Each view is a module here with its controllers
and templates under `templates/<view>/`; `site.py` serves them at Whop's paths and under
`/app`. Pages call the same downstream services and access rules as the JSON routes."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.web.app_home import AppHomeController
from wee5_gateway.web.site import page_routers, template_config

# Views Whop shows in its iframe, at the paths the Whop app is configured with.
WHOP_VIEWS: list[ControllerRouterHandler] = []
# The same views outside Whop, under /app, with the email sign-in.
APP_VIEWS: list[ControllerRouterHandler] = [AppHomeController, *WHOP_VIEWS]

ROUTES = page_routers(WHOP_VIEWS, APP_VIEWS)

__all__ = ["ROUTES", "template_config"]
