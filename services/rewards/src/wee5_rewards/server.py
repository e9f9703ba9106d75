"""The rewards process: gRPC server, outbox relay, and the consumer of `xp.level_up`."""

from __future__ import annotations

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings
from wee5_rewards.events import level_up_consumer
from wee5_rewards.models import outbox
from wee5_rewards.service import RewardsService
from wee5_rewards.servicer import RewardsServicer


async def build(settings: KitSettings) -> GrpcServer:
    resources = await Resources.open("rewards", settings)
    await resources.bus.ensure_stream("rewards")
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    service = RewardsService()
    server = resources.server()
    server.add_service(
        rewards_pb2.DESCRIPTOR.services_by_name["RewardsService"].full_name,
        lambda s: rewards_pb2_grpc.add_RewardsServiceServicer_to_server(
            RewardsServicer(service, resources.sessionmaker),  # type: ignore[abstract]
            s,
        ),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    server.add_background(level_up_consumer(resources.bus, resources.sessionmaker, service).run)
    return server
