"""The benchmarks process: health, reflection and BenchmarksService, whose RPCs all answer
UNIMPLEMENTED (the generated base servicer) until the benchmarks issue lands."""

from __future__ import annotations

from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings


async def build(settings: KitSettings) -> GrpcServer:
    resources = await Resources.open("benchmarks", settings)
    server = resources.server()
    server.add_service(
        benchmarks_pb2.DESCRIPTOR.services_by_name["BenchmarksService"].full_name,
        lambda s: benchmarks_pb2_grpc.add_BenchmarksServiceServicer_to_server(
            benchmarks_pb2_grpc.BenchmarksServiceServicer(),  # type: ignore[abstract]
            s,
        ),
    )
    return server
