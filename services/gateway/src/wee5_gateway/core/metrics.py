"""The gateway's Prometheus metrics: requests by route, method and status (Litestar's
Prometheus middleware, with grouped paths) and webhook deliveries by provider and outcome.
`/metrics` is served on `WEE5_METRICS_PORT`, never on the public port (wee5_kit.metrics)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, Protocol, TypeVar

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import Message, Receive, Scope, Send
from prometheus_client import Counter

from wee5_gateway.core.problems import (
    RateLimited,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from wee5_kit.metrics import LATENCY_BUCKETS, TimedCalls

REQUESTS: TimedCalls[tuple[str, str, int]] = TimedCalls(
    (
        "wee5_http_requests_total",
        "HTTP requests the gateway answered, by method, route (its path template: "
        "/api/v1/communities/{community_id}/…, never the ids) and status code.",
    ),
    (
        "wee5_http_request_duration_seconds",
        "Time to the end of the response, by method, route and status code.",
    ),
    ["method", "path", "status_code"],
    lambda key: (key[0], key[1], str(key[2])),
)


class RouteMetrics(PrometheusMiddleware):
    """Litestar's Prometheus middleware, cheaper per request: the label children of each
    (method, route, status) are resolved once and kept, so a request costs one tuple lookup,
    an increment and an observation (the stock one builds a Request, label dicts and looks the
    children up four times per request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # Only HTTP scopes come here (`scopes` of the config), and only matched routes.
            method: str = scope["method"]  # type: ignore[typeddict-item]
            path = scope.get("path_template", "other")
            REQUESTS.observe((method, path, status), time.perf_counter() - started)


def prometheus_config() -> PrometheusConfig:
    """Every matched HTTP route, grouped by its path template."""
    return PrometheusConfig(
        app_name="wee5-gateway",
        prefix="wee5_http",
        group_path=True,
        scopes={ScopeType.HTTP},
        buckets=list(LATENCY_BUCKETS),
        middleware_class=RouteMetrics,
    )


WEBHOOKS = Counter(
    "wee5_webhooks_total",
    "Webhook deliveries by provider and outcome: the acknowledged status (Whop: awarded, "
    "skipped, recorded, stale, ignored, duplicate, rejected; Stripe: processed, duplicate), "
    "or bad_signature, throttled (a bad signature over the IP's budget), rejected (Stripe's "
    "signature or payload refused by billing), not_configured, "
    "failed (answered 5xx: retried by the provider).",
    ["provider", "outcome"],
)


class _Ack(Protocol):
    @property
    def status(self) -> str: ...


P = ParamSpec("P")
A = TypeVar("A", bound=_Ack)


def counts_webhooks(
    provider: str,
) -> Callable[[Callable[P, Awaitable[A]]], Callable[P, Awaitable[A]]]:
    """Counts every delivery the decorated webhook handler answers, by its outcome."""

    def decorate(handler: Callable[P, Awaitable[A]]) -> Callable[P, Awaitable[A]]:
        @functools.wraps(handler)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> A:
            outcome = "failed"
            try:
                ack = await handler(*args, **kwargs)
                outcome = ack.status
                return ack
            except WebhookSignatureInvalid:
                outcome = "bad_signature"
                raise
            except RateLimited:
                outcome = "throttled"
                raise
            except WebhookNotConfigured:
                outcome = "not_configured"
                raise
            except WebhookPayloadInvalid:
                # Stripe's: billing refused the signature or the payload (its own
                # wee5_stripe_events_total says which).
                outcome = "rejected"
                raise
            finally:
                WEBHOOKS.labels(provider, outcome).inc()

        return counted

    return decorate
