"""Failures of our own infrastructure are told apart from bugs (wee5_kit.outages), from the
errors the real clients raise: a Postgres backend terminated mid-session, Redis and NATS not
listening. A gRPC server answers them UNAVAILABLE, naming the dependency; a bug stays INTERNAL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import nats
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import free_port
from wee5.xp.v1 import xp_pb2
from wee5_kit.db import create_engine
from wee5_kit.grpc import STATUS_DETAILS_KEY, GrpcServer, channel
from wee5_kit.outages import unavailable_dependency
from wee5_kit.redis import create_redis


async def error_of(call: Callable[[], Awaitable[object]]) -> BaseException:
    try:
        await call()
    except Exception as error:
        return error
    raise AssertionError("the call succeeded")


async def test_a_terminated_postgres_backend_is_the_database_being_unavailable(
    engine: AsyncEngine, database_url: str
) -> None:
    victim = create_engine(database_url, pool_size=1)
    try:
        async with victim.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            async with engine.connect() as admin:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            error = await error_of(lambda: conn.execute(text("SELECT 1")))
    finally:
        await victim.dispose()

    assert unavailable_dependency(error) == "database"


async def test_postgres_refusing_connections_is_the_database_being_unavailable() -> None:
    nowhere = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    try:
        error = await error_of(lambda: nowhere.connect().__aenter__())
    finally:
        await nowhere.dispose()

    assert unavailable_dependency(error) in {"database", "network"}


async def test_redis_and_nats_not_listening_are_their_outages() -> None:
    redis = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        redis_error = await error_of(redis.ping)
    finally:
        await redis.aclose()
    nats_error = await error_of(
        lambda: nats.connect(
            f"nats://127.0.0.1:{free_port()}",
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            connect_timeout=1,
        )
    )

    assert unavailable_dependency(redis_error) == "redis"
    assert unavailable_dependency(nats_error) == "events"


async def test_a_bug_is_not_an_outage(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        syntax = await error_of(lambda: conn.execute(text("SELEC 1")))

    assert unavailable_dependency(syntax) is None
    assert unavailable_dependency(KeyError("x")) is None


async def test_a_service_answers_an_outage_unavailable_and_a_bug_internal(
    engine: AsyncEngine, database_url: str
) -> None:
    victim = create_engine(database_url, pool_size=1)

    async def lost_database(request: bytes, context: object) -> bytes:
        async with victim.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            async with engine.connect() as admin:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await conn.execute(text("SELECT 1"))
        return b""

    async def bug(request: bytes, context: object) -> bytes:
        raise KeyError("a bug")

    handler = grpc.method_handlers_generic_handler(
        "test.Faulty",
        {
            "LostDatabase": grpc.unary_unary_rpc_method_handler(lost_database),
            "Bug": grpc.unary_unary_rpc_method_handler(bug),
        },
    )
    server = GrpcServer("faulty", host="127.0.0.1", port=free_port())
    server.add_service("test.Faulty", lambda s: s.add_generic_rpc_handlers((handler,)))
    await server.start()
    try:
        async with channel(server.address) as chan:
            with pytest.raises(grpc.aio.AioRpcError) as outage:
                await chan.unary_unary("/test.Faulty/LostDatabase", None, None)(b"")
            with pytest.raises(grpc.aio.AioRpcError) as internal:
                await chan.unary_unary("/test.Faulty/Bug", None, None)(b"")
    finally:
        await server.stop()
        await victim.dispose()

    assert (outage.value.code(), outage.value.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        "database unavailable",
    )
    trailers: dict[str, Any] = dict(outage.value.trailing_metadata() or ())  # type: ignore[arg-type]
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(trailers[STATUS_DETAILS_KEY]).details[0].Unpack(info)
    assert (info.reason, dict(info.metadata)) == (
        "DEPENDENCY_UNAVAILABLE",
        {"dependency": "database"},
    )
    assert (internal.value.code(), internal.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "internal error",
    )


async def test_a_repeatable_call_is_retried_once_on_unavailable_and_others_are_not() -> None:
    calls: Counter[str] = Counter()

    def flaky(name: str) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            calls[name] += 1
            if calls[name] == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
            return b""

        return grpc.unary_unary_rpc_method_handler(handle)

    xp = xp_pb2.DESCRIPTOR.services_by_name["XpService"]
    # GetLeaderboard has no side effects, RecordActivities is idempotent on its keys,
    # ImportMembers is neither (by its contract in xp.proto).
    methods = ("GetLeaderboard", "RecordActivities", "ImportMembers")
    handler = grpc.method_handlers_generic_handler(xp.full_name, {m: flaky(m) for m in methods})
    server = GrpcServer("flaky", host="127.0.0.1", port=free_port())
    server.add_service(xp.full_name, lambda s: s.add_generic_rpc_handlers((handler,)))
    await server.start()
    try:
        async with channel(server.address, retrying=[xp]) as chan:
            for method in methods[:2]:
                await chan.unary_unary(f"/{xp.full_name}/{method}", None, None)(b"")
            with pytest.raises(grpc.aio.AioRpcError) as not_repeated:
                await chan.unary_unary(f"/{xp.full_name}/ImportMembers", None, None)(b"")
    finally:
        await server.stop()

    assert calls == {"GetLeaderboard": 2, "RecordActivities": 2, "ImportMembers": 1}
    assert not_repeated.value.code() == grpc.StatusCode.UNAVAILABLE
