"""The gateway's plumbing around its routes: `build_app` wires errors, the access guard, rate
limits, the request context and the resources (database, gRPC channels, NATS) that live from
startup to shutdown. `wee5_gateway.app` hands it the contexts' routes."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from litestar import Litestar, Request, Router
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import (
    WHOP_COMMUNITIES_STATE,
    WHOP_VERIFIER_STATE,
    Principal,
    access_guard,
    known_principal,
    resolve_principal,
)
from wee5_gateway.core.access_cache import access_cache_lifespan, provide_access_cache
from wee5_gateway.core.access_log import access_notes
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import STATE_DEPENDENCIES
from wee5_gateway.core.metrics import prometheus_config
from wee5_gateway.core.openapi import document_errors, openapi_config
from wee5_gateway.core.problems import EXCEPTION_HANDLERS
from wee5_gateway.core.protection import (
    RateLimitMiddleware,
    RateLimits,
    SecurityHeaders,
    compression_config,
    cors_config,
)
from wee5_gateway.core.protection.csrf import RequestOriginMiddleware, refuse_non_json_body
from wee5_gateway.core.security import AccessTokens, Passwords
from wee5_gateway.core.whop_access import WhopAccessLevels, WhopApi, WhopCommunities
from wee5_gateway.core.whop_identity import WhopJwks, WhopTokenVerifier
from wee5_kit.db import create_engine, create_sessionmaker
from wee5_kit.events import EventBus
from wee5_kit.grpc import REQUEST_ID_HEADER, request_id_var
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.metrics import PROBES, consumers_probe, database_pool_probe, redis_pool_probe
from wee5_kit.redis import Keys, create_redis

log = get_logger("wee5.gateway")
access_log = get_logger("wee5.gateway.access")

# A caller's request id is kept only if it is a plain token: it goes into logs and gRPC metadata.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Probes hit these every few seconds; they are logged only when they fail.
_PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def build_app(
    settings: GatewaySettings,
    *,
    routes: Sequence[ControllerRouterHandler],
    signed_routes: Sequence[ControllerRouterHandler] = (),
    lifespans: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    template_config: TemplateConfig[Any] | None = None,
) -> Litestar:
    """The app serving `routes` behind the access guard, and `signed_routes` (providers'
    webhooks, whose signature is their only credential) without it; `lifespans` run inside
    the `resources` one (they may use the bus, the database and the channels it opens).

    The guard has nothing to check on a signed route, yet Litestar copies the route's handler
    for each guard call: a twentieth of the gateway's CPU on a webhook redelivery."""
    tokens = AccessTokens(
        _jwt_secret(settings), timedelta(seconds=settings.access_token_ttl_seconds)
    )
    passwords = Passwords()
    rate_limits = RateLimits(settings)

    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        bus = await EventBus.connect(settings.nats_url, settings.event_prefix, "wee5-gateway")
        engine = create_engine(settings.database_url)
        downstream = Downstream.connect(settings)
        redis = create_redis(settings.redis_url)  # readiness asks it (its own pool, idle else)
        app.state.bus = bus
        app.state.redis = redis
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.downstream = downstream
        remove_probes = [
            PROBES.add("gateway.database_pool", database_pool_probe("gateway", engine)),
            PROBES.add("gateway.redis_pool", redis_pool_probe("gateway", redis)),
            PROBES.add("gateway.consumers", consumers_probe(bus)),
        ]
        try:
            async with whop_sign_in(settings, app):
                yield
        finally:
            for remove in remove_probes:
                remove()
            await downstream.close()
            await redis.aclose()
            await engine.dispose()
            await bus.close()
            await rate_limits.close()

    def provide_settings() -> GatewaySettings:
        return settings

    def provide_tokens() -> AccessTokens:
        return tokens

    def provide_passwords() -> Passwords:
        return passwords

    async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        # The rate limiter or the guard has usually resolved the caller already.
        known = known_principal(request)
        if known is not None:
            return known
        return await resolve_caller(request)

    async def resolve_caller(request: Request[Any, Any, Any]) -> Principal:
        return await resolve_principal(request, tokens, provide_access_cache(request.app.state))

    app = Litestar(
        route_handlers=[
            Router("/", route_handlers=list(routes), guards=[access_guard]),
            *signed_routes,
        ],
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "tokens": Provide(provide_tokens, sync_to_thread=False),
            "passwords": Provide(provide_passwords, sync_to_thread=False),
            "principal": Provide(provide_principal),
            **STATE_DEPENDENCIES,
        },
        before_request=refuse_non_json_body,
        exception_handlers=EXCEPTION_HANDLERS,
        # The contexts' lifespans run on what `resources` opens, and stop before it closes.
        lifespan=[resources, access_cache_lifespan(settings.database_url), *lifespans],
        state=State({"rate_limits": rate_limits, "tokens": tokens, "settings": settings}),
        middleware=[
            # Outermost: requests refused by the rate limiter are counted too.
            prometheus_config().middleware,
            RateLimitMiddleware(rate_limits, resolve_caller),
            RequestOriginMiddleware(settings),
        ],
        request_max_body_size=settings.max_body_bytes,
        cors_config=cors_config(settings),
        compression_config=compression_config(),
        openapi_config=openapi_config(),
        template_config=template_config,
        # Logs go through wee5_kit.logging (JSON on stdout); Litestar configures none of its own.
        logging_config=None,
    )
    document_errors(app)
    # Litestar runs middleware only for routes that matched; wrapping the router's handler
    # also gives 404s and 405s a request id, security headers and an access-log line.
    app.asgi_handler = RequestContext(
        SecurityHeaders(app.asgi_handler, settings.whop_frame_ancestors)
    )
    return app


@asynccontextmanager
async def whop_sign_in(settings: GatewaySettings, app: Litestar) -> AsyncIterator[None]:
    """Whop sign-in while the app runs, when WEE5_WHOP_APP_ID is set: the token verifier (JWKS
    or fixed key) and Whop's access checks; otherwise `x-whop-user-token` is ignored."""
    if not settings.whop_app_id:
        log.info("Whop sign-in is off: WEE5_WHOP_APP_ID is not set, x-whop-user-token is ignored")
        yield
        return
    api_key = settings.whop_api_key.get_secret_value() if settings.whop_api_key else None
    if not api_key:
        log.warning("WEE5_WHOP_API_KEY is not set: Whop users' access checks answer 503")
    redis = create_redis(settings.redis_url)
    async with httpx.AsyncClient(timeout=settings.whop_api_timeout_seconds) as client:
        jwks = None if settings.whop_public_key else WhopJwks(settings.whop_jwks_url, client)
        api = WhopApi(client, settings.whop_api_url, api_key)
        levels = WhopAccessLevels(
            api,
            redis,
            Keys(settings.redis_prefix),
            settings.whop_access_cache_seconds,
            settings.whop_access_stale_seconds,
        )
        app.state[WHOP_VERIFIER_STATE] = WhopTokenVerifier(
            settings.whop_app_id, jwks=jwks, public_key_pem=settings.whop_public_key
        )
        app.state[WHOP_COMMUNITIES_STATE] = WhopCommunities(api, levels, app.state.sessionmaker)
        app.state.whop_api = api
        try:
            yield
        finally:
            await redis.aclose()


def _jwt_secret(settings: GatewaySettings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    log.warning(
        "WEE5_JWT_SECRET is not set: signing tokens with a random key of this process; "
        "sessions end when it restarts and other gateway replicas reject them"
    )
    return secrets.token_urlsafe(48)


class RequestContext:
    """Per HTTP request: a request id (the caller's X-Request-ID or a new one) in the logs, on
    every gRPC call and in the response header; then one access-log line (never bodies), with
    what the route noted (`note_access`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        notes: dict[str, object] = {}
        notes_token = access_notes.set(notes)
        started = time.perf_counter()
        try:
            with bound_contextvars(request_id=request_id):
                try:
                    await self.app(scope, receive, send_with_request_id)
                finally:
                    path = scope["path"]
                    if path not in _PROBE_PATHS or status >= 400:
                        access_log.info(
                            "request",
                            method=scope["method"],
                            path=path,
                            status=status,
                            ms=round((time.perf_counter() - started) * 1000, 2),
                            **notes,
                        )
        finally:
            access_notes.reset(notes_token)
            request_id_var.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _REQUEST_ID_HEADER_BYTES:
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return f"{_PROCESS_ID}{next(_request_numbers):08x}"


_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
# New request ids: this process's random prefix and a count (unique across replicas and
# restarts like a uuid4, without asking the kernel for 16 random bytes per request).
_PROCESS_ID = secrets.token_hex(12)
_request_numbers = itertools.count(1)
