"""Liveness and readiness probes.

Readiness names each failed check only to internal callers: a client on this machine
(loopback peer) or one presenting the internal token (`X-WEE5-Internal-Token`, the
`WEE5_INTERNAL_TOKEN` services share); anyone else gets the bare status. Whoever asks, the
checks run at most once a second per process: a flood of /readyz costs the dependencies
nothing more."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State

from wee5_gateway.api.health.schemas import Health, Readiness
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.cache import SharedReads
from wee5_gateway.core.clients import OK, readiness
from wee5_gateway.core.deps import DownstreamDep, EngineDep, SettingsDep
from wee5_gateway.core.problems import NotReady, problem_responses
from wee5_gateway.demo import DEMO_STATE, DemoStatus

INTERNAL_TOKEN_HEADER = "x-wee5-internal-token"
# How long one round of checks answers every caller.
CHECKS_SHARED_SECONDS = 1.0
_CHECKS_KEY = "wee5.readiness_checks"


class HealthController(Controller):
    tags = ["health"]

    @get(
        "/healthz",
        summary="Liveness: the process answers",
        description="200 while the process serves requests, whatever its dependencies say "
        "(they are `/readyz`'s business). For the orchestrator's liveness probe.",
    )
    async def liveness(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        summary="Readiness: the database, Redis, NATS and every downstream service answer "
        "(and, with WEE5_DEMO on, the demo community is seeded)",
        description="200 once the gateway's database, Redis, NATS and every downstream "
        "service's gRPC health check answer; 503 naming each failed check under `checks` "
        "otherwise. For the orchestrator's readiness probe; `/healthz` (liveness) does not "
        "depend on any of them.",
        responses=problem_responses(503),
    )
    async def readiness(
        self,
        request: Request[Any, Any, Any],
        downstream: DownstreamDep,
        engine: EngineDep,
        settings: SettingsDep,
        state: State,
    ) -> Readiness:
        async def check() -> dict[str, str]:
            return await readiness(
                downstream,
                engine,
                state.redis,
                state.bus,
                settings.readiness_timeout_seconds,
            )

        checks = dict(await _shared_checks(state).get("checks", check))
        demo = state.get(DEMO_STATE)
        if isinstance(demo, DemoStatus):
            checks["demo"] = demo.state
        failed = [name for name, state in checks.items() if state != OK]
        if not internal_caller(request, settings):
            if failed:
                raise NotReady("not ready")
            return Readiness(status="ready")
        if failed:
            raise NotReady(f"unavailable: {', '.join(failed)}", checks=checks)
        return Readiness(status="ready", checks=checks)


def internal_caller(request: Request[Any, Any, Any], settings: GatewaySettings) -> bool:
    """A caller on this machine, or one with the services' internal token."""
    if request.client is not None:
        try:
            if ipaddress.ip_address(request.client.host).is_loopback:
                return True
        except ValueError:  # not an address (a Unix socket's peer)
            pass
    offered = request.headers.get(INTERNAL_TOKEN_HEADER)
    token = settings.internal_token
    return bool(
        offered
        and token is not None
        and hmac.compare_digest(offered.encode(), token.get_secret_value().encode())
    )


def _shared_checks(state: State) -> SharedReads[str, dict[str, str]]:
    shared = state.get(_CHECKS_KEY)
    if not isinstance(shared, SharedReads):
        shared = SharedReads[str, dict[str, str]](CHECKS_SHARED_SECONDS, CHECKS_SHARED_SECONDS)
        state[_CHECKS_KEY] = shared
    return shared
