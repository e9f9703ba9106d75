"""The setup context: what a community's admins still have to do to run WEE5 as a Whop app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.setup.controller import SetupController

ROUTES: list[ControllerRouterHandler] = [SetupController]
