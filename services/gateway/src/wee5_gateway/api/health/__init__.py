"""The health context: liveness and readiness probes."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.health.controller import HealthController

ROUTES: list[ControllerRouterHandler] = [HealthController]
