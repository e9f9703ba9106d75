"""The communities context: who may do what in a community (roles), its API keys and its
audit log."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.communities.controller import (
    ApiKeysController,
    AuditLogController,
    RolesController,
)

ROUTES: list[ControllerRouterHandler] = [RolesController, ApiKeysController, AuditLogController]
