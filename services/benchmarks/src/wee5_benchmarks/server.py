"""The benchmarks process: gRPC server, the outbox relay of `benchmarks.submitted`, and the
in-memory result snapshots."""

from __future__ import annotations

from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.models import outbox
from wee5_benchmarks.service import BenchmarksService
from wee5_benchmarks.servicer import BenchmarksServicer
from wee5_benchmarks.snapshot import Snapshots
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings


async def build(settings: KitSettings) -> GrpcServer:
    assert isinstance(settings, BenchmarksSettings)
    resources = await Resources.open("benchmarks", settings)
    await resources.bus.ensure_stream("benchmarks")
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    service = BenchmarksService(
        settings, events, Snapshots(settings.benchmarks_snapshot_cache_rows)
    )
    servicer = BenchmarksServicer(service, resources.sessionmaker)
    server = resources.server()
    server.add_service(
        benchmarks_pb2.DESCRIPTOR.services_by_name["BenchmarksService"].full_name,
        lambda s: benchmarks_pb2_grpc.add_BenchmarksServiceServicer_to_server(servicer, s),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    return server
