"""A service's gRPC health follows what it depends on: NOT_SERVING while its Redis (or
database, or NATS) does not answer, SERVING again once it does."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from tests.conftest import free_port
from wee5_kit.grpc import LIVENESS, GrpcServer, channel, check_health
from wee5_kit.redis import create_redis


async def eventually(expected: bool, address: str) -> None:
    async with channel(address) as chan:
        for _ in range(50):
            if await check_health(chan) is expected:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"health did not become {'SERVING' if expected else 'NOT_SERVING'}")


async def test_health_is_not_serving_while_redis_is_down_and_serving_once_it_answers(
    redis: Redis,
) -> None:
    server = GrpcServer("healthy", host="127.0.0.1", port=free_port(), dependency_check_seconds=0.1)
    down = create_redis(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    state = {"client": down}

    async def redis_answers() -> object:
        return await state["client"].ping()

    server.add_dependency("redis", redis_answers)
    await server.start()
    try:
        await eventually(False, server.address)
        # Alive all along: Kubernetes' liveness probe asks for this name and must not
        # restart a process because Redis is away.
        async with channel(server.address) as chan:
            alive = await health_pb2_grpc.HealthStub(chan).Check(
                health_pb2.HealthCheckRequest(service=LIVENESS)
            )
        assert alive.status == health_pb2.HealthCheckResponse.SERVING
        state["client"] = redis  # Redis is back
        await eventually(True, server.address)
    finally:
        await server.stop()
        await down.aclose()
