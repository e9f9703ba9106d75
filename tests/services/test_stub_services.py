"""benchmarks and resources before their issues: real processes that answer health and
reflection and say UNIMPLEMENTED to every RPC not built yet rather than pretend (billing is
built: tests/billing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import free_port
from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.server import build as build_benchmarks
from wee5_kit.grpc import GrpcServer, channel, check_health
from wee5_kit.settings import KitSettings
from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build as build_resources


@dataclass(frozen=True)
class StubService:
    name: str
    full_name: str
    settings: Callable[[str], KitSettings]
    build: Callable[[KitSettings], Awaitable[GrpcServer]]
    # One RPC of the service, called with an empty request.
    call_one_rpc: Callable[[grpc.aio.Channel], Awaitable[object]]


STUBS = [
    StubService(
        name="benchmarks",
        full_name="wee5.benchmarks.v1.BenchmarksService",
        settings=lambda addr: BenchmarksSettings(benchmarks_addr=addr),
        build=build_benchmarks,
        call_one_rpc=lambda ch: benchmarks_pb2_grpc.BenchmarksServiceStub(ch).ListCategories(
            benchmarks_pb2.ListCategoriesRequest()
        ),
    ),
    StubService(
        name="resources",
        full_name="wee5.resources.v1.ResourcesService",
        settings=lambda addr: ResourcesSettings(resources_addr=addr),
        build=build_resources,
        call_one_rpc=lambda ch: resources_pb2_grpc.ResourcesServiceStub(ch).ListResources(
            resources_pb2.ListResourcesRequest()
        ),
    ),
]


@dataclass
class Running:
    service: StubService
    channel: grpc.aio.Channel


@pytest.fixture(scope="module", params=STUBS, ids=[stub.name for stub in STUBS])
async def running(
    request: pytest.FixtureRequest, test_env: dict[str, str], database_url: str
) -> AsyncIterator[Running]:
    service: StubService = request.param
    address = f"127.0.0.1:{free_port()}"
    server = await service.build(service.settings(address))
    await server.start()
    client = channel(address)
    try:
        yield Running(service, client)
    finally:
        await client.close(None)
        await server.stop()


async def test_stub_service_reports_serving(running: Running) -> None:
    assert await check_health(running.channel)


async def test_stub_service_answers_unimplemented(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await running.service.call_one_rpc(running.channel)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_stub_service_is_listed_by_reflection(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    reply = await call.read()
    listed = {service.name for service in reply.list_services_response.service}
    assert running.service.full_name in listed
    assert "grpc.health.v1.Health" in listed
