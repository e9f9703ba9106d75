"""The resources context: the resource library's listing and search, direct-to-storage
uploads, admin edits, signed downloads and download stats. Files never pass through the
gateway."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.resources.controller import ResourcesController, ResourceSettingsController

ROUTES: list[ControllerRouterHandler] = [ResourcesController, ResourceSettingsController]
