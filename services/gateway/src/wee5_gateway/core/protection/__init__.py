"""How the gateway holds under abuse: rate limits per route class (Redis), a request body size
limit, CORS, security headers and gzip. `create_app` wires them in."""

from __future__ import annotations

from wee5_gateway.core.protection.headers import SecurityHeaders, compression_config, cors_config
from wee5_gateway.core.protection.rate_limits import (
    RateLimitMiddleware,
    RateLimits,
    RouteClass,
    route_class,
    throttle_rejected_webhook,
)

__all__ = [
    "RateLimitMiddleware",
    "RateLimits",
    "RouteClass",
    "SecurityHeaders",
    "compression_config",
    "cors_config",
    "route_class",
    "throttle_rejected_webhook",
]
