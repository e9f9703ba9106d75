"""How the pages are served: the Jinja environment (autoescaping on), the static files, the
guard that keeps other sites from posting forms as the caller, and the routers that serve
each view twice: at Whop's paths (`/experiences/…`, `/dashboard/…`, `/discover`) and under
`/app` for the email sign-in outside Whop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader
from litestar import Router
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from wee5_gateway.core.problems import Forbidden
from wee5_gateway.web.errors import PAGE_EXCEPTION_HANDLERS
from wee5_gateway.web.experience import drawn_rows
from wee5_gateway.web.page import APP_PREFIX, provide_page

HERE = Path(__file__).parent
STATIC_PATH = "/static"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    # Templates ship with the package: no stat() of every included file on every render
    # (a board's rows include theirs a hundred times a page).
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, auto_reload=False
    )
    environment.globals["drawn_rows"] = drawn_rows
    return TemplateConfig(instance=JinjaTemplateEngine(engine_instance=environment))


def static_files() -> ControllerRouterHandler:
    # Asset names carry their version (htmx-2.0.11.min.js) or change rarely (app.css).
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[HERE / "static"],
        cache_control=None,
        include_in_schema=False,
    )


async def same_origin_writes(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A page's form or htmx call that changes something must come from our own pages: htmx
    sends `HX-Request` (a header no other site may send here without a CORS grant), and
    browsers say where a plain form came from in `Sec-Fetch-Site` or `Origin`."""
    if connection.scope.get("method") in _SAFE_METHODS:
        return
    headers = connection.headers
    if headers.get("hx-request") == "true":
        return
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site in ("same-origin", "none"):
            return
        raise Forbidden("this form was sent from another site")
    origin = headers.get("origin")
    if origin and urlsplit(origin).netloc == headers.get("host"):
        return
    raise Forbidden("this form was sent from another site, or without saying where from")


def page_routers(
    *,
    member_views: Sequence[ControllerRouterHandler],
    admin_views: Sequence[ControllerRouterHandler],
    whop_only: Sequence[ControllerRouterHandler],
    app_only: Sequence[ControllerRouterHandler],
) -> list[ControllerRouterHandler]:
    """Every view twice, with the same controllers (a Controller class may be registered on
    several routers): at Whop's paths and under `/app`. Member views carry their own path
    (`/experiences/{community_id}…`); admin views are relative to a community
    (`/{community_id}…`) and served under Whop's `/dashboard/{company_id}` and under
    `/app/dashboard`. Plus the static files."""
    shared: dict[str, Any] = {
        "guards": [same_origin_writes],
        "exception_handlers": PAGE_EXCEPTION_HANDLERS,
        "dependencies": {"page": Provide(provide_page, sync_to_thread=False)},
        "include_in_schema": False,
    }
    whop_dashboard = Router(path="/dashboard/{company_id:str}", route_handlers=list(admin_views))
    app_dashboard = Router(path="/dashboard", route_handlers=list(admin_views))
    return [
        Router(path="/", route_handlers=[*member_views, *whop_only, whop_dashboard], **shared),
        Router(path=APP_PREFIX, route_handlers=[*member_views, *app_only, app_dashboard], **shared),
        static_files(),
    ]
