"""The xp process: gRPC server, outbox relay, the consumers of points events, and the Redis it
keeps cooldowns and boards in."""

from __future__ import annotations

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.redis import Keys, create_redis
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.events import points_consumers
from wee5_xp.leaderboards import Leaderboards
from wee5_xp.models import outbox
from wee5_xp.points import PointAmounts, PointsService
from wee5_xp.service import XpRates, XpService
from wee5_xp.servicer import XpServicer


async def build(settings: KitSettings) -> GrpcServer:
    assert isinstance(settings, XpSettings)
    resources = await Resources.open("xp", settings)
    await resources.bus.ensure_stream("xp")
    redis = create_redis(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    service = XpService(
        rates=XpRates.from_settings(settings),
        cooldowns=Cooldowns(redis, keys),
        leaderboards=Leaderboards(redis, keys),
        outbox=events,
    )
    server = resources.server()
    # RPCs not built yet are inherited from the generated base and answer UNIMPLEMENTED.
    points = PointsService(service, PointAmounts.from_settings(settings))
    servicer = XpServicer(service, resources.sessionmaker, points)  # type: ignore[abstract]
    server.add_service(
        xp_pb2.DESCRIPTOR.services_by_name["XpService"].full_name,
        lambda s: xp_pb2_grpc.add_XpServiceServicer_to_server(servicer, s),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    for consumer in points_consumers(resources.bus, resources.sessionmaker, points):
        server.add_background(consumer.run)
    server.add_cleanup(redis.aclose)
    return server
