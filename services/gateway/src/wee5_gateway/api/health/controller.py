"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State

from wee5_gateway.api.health.schemas import Health, Readiness
from wee5_gateway.core.clients import OK, readiness
from wee5_gateway.core.deps import DownstreamDep, EngineDep, SettingsDep
from wee5_gateway.core.problems import NotReady, problem_responses
from wee5_gateway.demo import DEMO_STATE, DemoStatus


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
        downstream: DownstreamDep,
        engine: EngineDep,
        settings: SettingsDep,
        state: State,
    ) -> Readiness:
        checks = await readiness(
            downstream,
            engine,
            state.redis,
            state.bus,
            settings.readiness_timeout_seconds,
        )
        demo = state.get(DEMO_STATE)
        if isinstance(demo, DemoStatus):
            checks["demo"] = demo.state
        failed = [name for name, state in checks.items() if state != OK]
        if failed:
            raise NotReady(f"unavailable: {', '.join(failed)}", checks=checks)
        return Readiness(status="ready", checks=checks)
