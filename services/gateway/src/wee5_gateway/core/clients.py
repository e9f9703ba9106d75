"""The gateway's gRPC clients: one channel per downstream service, and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import grpc
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_kit.db import ping
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel, check_health
from wee5_kit.internal_calls import InternalCalls
from wee5_kit.logging import get_logger

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub
    from wee5.resources.v1.resources_pb2_grpc import ResourcesServiceAsyncStub
    from wee5.rewards.v1.rewards_pb2_grpc import RewardsServiceAsyncStub
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

log = get_logger("wee5.gateway")

DOWNSTREAM = ("xp", "rewards", "benchmarks", "resources", "billing")
CONTRACTS = {
    "xp": xp_pb2.DESCRIPTOR.services_by_name["XpService"],
    "rewards": rewards_pb2.DESCRIPTOR.services_by_name["RewardsService"],
    "benchmarks": benchmarks_pb2.DESCRIPTOR.services_by_name["BenchmarksService"],
    "resources": resources_pb2.DESCRIPTOR.services_by_name["ResourcesService"],
    "billing": billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
}
OK = "ok"
DOWN = "unavailable"


class Downstream:
    """Channels to every service (opened at startup, closed at shutdown) and their stubs.

    Every call gets the kit's deadline and carries the request id.
    """

    def __init__(self, channels: dict[str, grpc.aio.Channel]) -> None:
        self.channels = channels
        self.xp: XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(channels["xp"])
        self.billing: BillingServiceAsyncStub = billing_pb2_grpc.BillingServiceStub(
            channels["billing"]
        )
        self.benchmarks: BenchmarksServiceAsyncStub = benchmarks_pb2_grpc.BenchmarksServiceStub(
            channels["benchmarks"]
        )
        self.resources: ResourcesServiceAsyncStub = resources_pb2_grpc.ResourcesServiceStub(
            channels["resources"]
        )
        self.rewards: RewardsServiceAsyncStub = rewards_pb2_grpc.RewardsServiceStub(
            channels["rewards"]
        )

    @classmethod
    def connect(cls, settings: GatewaySettings) -> Downstream:
        calls = InternalCalls.from_settings(settings)
        return cls(
            {
                name: channel(
                    settings.service_addr(name),
                    default_timeout=settings.grpc_deadline_seconds,
                    retrying=[CONTRACTS[name]],
                    calls=calls,
                )
                for name in DOWNSTREAM
            }
        )

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(None) for ch in self.channels.values()))


async def readiness(
    downstream: Downstream,
    engine: AsyncEngine,
    redis: Redis,
    bus: EventBus,
    deadline_seconds: float,
) -> dict[str, str]:
    """`ok` or `unavailable` for each of the gateway's dependencies: its database, Redis
    (webhook receipts, rate limits, Whop access), NATS (events) and each downstream service,
    all checked at once, none waited on longer than `deadline_seconds`."""

    async def answers(name: str, check: Awaitable[object]) -> bool:
        try:
            async with asyncio.timeout(deadline_seconds):
                await check
        except Exception as error:
            log.warning(f"{name} not ready", error=type(error).__name__)
            return False
        return True

    checks: dict[str, Awaitable[bool]] = {
        "database": answers("database", ping(engine)),
        "redis": answers("redis", redis.ping()),
        "events": bus.connected(),
        **{name: check_health(ch, deadline_seconds) for name, ch in downstream.channels.items()},
    }
    results = await asyncio.gather(*checks.values())
    return {name: OK if up else DOWN for name, up in zip(checks, results, strict=True)}
