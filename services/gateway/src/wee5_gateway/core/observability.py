"""The gateway's error reporting (Sentry, with its Litestar integration) and traces
(OpenTelemetry, a span per HTTP request): wee5_kit.sentry and wee5_kit.tracing set up for an
HTTP process. Both are off unless configured; off, the app is built exactly as without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from litestar import Litestar
from litestar.exceptions import HTTPException

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.problems import GRPC_TO_HTTP, UNMAPPED_GRPC_STATUS, ProblemError
from wee5_kit import sentry, tracing
from wee5_kit.errors import DomainError

if TYPE_CHECKING:
    from sentry_sdk.integrations import Integration

# Probes hit these every few seconds: no trace each time.
UNTRACED_PATHS = "/healthz,/readyz"


def start_observability(settings: GatewaySettings) -> None:
    """Starts error reporting and tracing when configured. Call it inside the running event
    loop and before `create_app` (the Litestar integration hooks the app's construction)."""
    sentry.start_error_reporting("gateway", integrations=_litestar, reportable=answers_5xx)
    tracing.start_tracing("gateway", settings.environment)


def _litestar() -> list[Integration]:
    from sentry_sdk.integrations.litestar import LitestarIntegration

    return [LitestarIntegration()]


def traced(app: Litestar) -> Litestar:
    """`app` with a span around every request (outermost, so that the access log line and
    every gRPC call of the request are in it) when tracing is on; `app` unchanged otherwise."""
    if tracing.TRACING.on:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app.asgi_handler = OpenTelemetryMiddleware(  # type: ignore[assignment]  # ASGI, typed wider
            app.asgi_handler, excluded_urls=UNTRACED_PATHS, exclude_spans=["receive", "send"]
        )
    return app


def answers_5xx(error: BaseException) -> bool:
    """Whether the gateway answers `error` with a 5xx (core.problems): what is reported.
    A refusal (a 404 a service answered, a rule broken) is an answer, not a failure."""
    if isinstance(error, HTTPException):
        return error.status_code >= 500
    if isinstance(error, ProblemError):
        return error.status >= 500
    if isinstance(error, grpc.aio.AioRpcError):
        return GRPC_TO_HTTP.get(error.code(), UNMAPPED_GRPC_STATUS) >= 500
    if isinstance(error, DomainError):
        return GRPC_TO_HTTP.get(error.status, UNMAPPED_GRPC_STATUS) >= 500
    # A body nested too deeply is the caller's (core.problems answers 400).
    return not isinstance(error, RecursionError)
