"""The benchmarks process built in-process on a free port (real gRPC, Postgres and NATS), and
helpers that answer a category the way members would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from tests.conftest import free_port
from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.server import build
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel, check_health

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

COMPENSATION = benchmarks_pb2.CATEGORY_COMPENSATION
OPERATIONAL = benchmarks_pb2.CATEGORY_OPERATIONAL


@dataclass
class Benchmarks:
    addr: str
    stub: Stub


@pytest.fixture(scope="module")
async def benchmarks_server(database_url: str, bus: EventBus) -> AsyncIterator[Benchmarks]:
    """The benchmarks server; depends on `bus` so the run's streams are deleted afterwards."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build(BenchmarksSettings(benchmarks_addr=addr))
    await server.start()
    client = channel(addr)
    try:
        assert await check_health(client)
        yield Benchmarks(addr, benchmarks_pb2_grpc.BenchmarksServiceStub(client))
    finally:
        await client.close(None)
        await server.stop()


@pytest.fixture
def benchmarks(benchmarks_server: Benchmarks) -> Stub:
    return benchmarks_server.stub


@pytest.fixture
async def community(benchmarks: Stub, community_id: str) -> str:
    """A community of the test's own with benchmarks turned on."""
    await benchmarks.UpdateCommunitySettings(
        benchmarks_pb2.UpdateCommunitySettingsRequest(
            community_id=community_id, enabled=True, updated_by="owner-1"
        )
    )
    return community_id


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


def pay(
    base_salary: float, role: str = "sdr", region: str = "europe", **more: Any
) -> dict[str, Any]:
    return {"role": role, "region": region, "base_salary": base_salary, **more}


async def submit(
    stub: Stub,
    community_id: str,
    user_id: str,
    answers: dict[str, Any],
    category: benchmarks_pb2.Category.ValueType = COMPENSATION,
) -> benchmarks_pb2.SubmitBenchmarkResponse:
    return await stub.SubmitBenchmark(
        benchmarks_pb2.SubmitBenchmarkRequest(
            community_id=community_id, user_id=user_id, category=category, answers=struct(answers)
        )
    )


async def results(
    stub: Stub,
    community_id: str,
    *,
    field: str = "base_salary",
    group_by: str = "",
    filters: dict[str, str] | None = None,
    user_id: str = "",
    category: benchmarks_pb2.Category.ValueType = COMPENSATION,
) -> benchmarks_pb2.GetResultsResponse:
    return await stub.GetResults(
        benchmarks_pb2.GetResultsRequest(
            community_id=community_id,
            category=category,
            field=field,
            group_by=group_by,
            filters=filters or {},
            user_id=user_id,
        )
    )


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field → description from the BadRequest in the status details."""
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(bad_request):
                    return {v.field: v.description for v in bad_request.field_violations}
    return {}
