"""The xp process: gRPC server, outbox relay, the consumers of points events, and the Redis it
keeps cooldowns and boards in."""

from __future__ import annotations

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.metrics import redis_pool_probe
from wee5_kit.redis import Keys, create_redis
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings
from wee5_xp.batching import ActivityBatcher
from wee5_xp.companies import CompanyBoards
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.events import community_group_consumer, points_consumers
from wee5_xp.leaderboards import Leaderboards
from wee5_xp.models import outbox
from wee5_xp.points import PointAmounts, PointsService
from wee5_xp.service import XpService, default_config
from wee5_xp.servicer import XpServicer


async def build(settings: KitSettings) -> GrpcServer:
    assert isinstance(settings, XpSettings)
    resources = await Resources.open("xp", settings)
    await resources.bus.ensure_stream("xp")
    redis = create_redis(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    leaderboards = Leaderboards(redis, keys)
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    service = XpService(
        defaults=default_config(settings),
        cooldowns=Cooldowns(redis, keys),
        leaderboards=leaderboards,
        outbox=events,
        sessionmaker=resources.sessionmaker,
        config_cache_seconds=settings.xp_config_cache_seconds,
    )
    batcher = ActivityBatcher(
        service,
        max_batch=settings.xp_batch_max,
        window=settings.xp_batch_window_ms / 1000,
        writers=settings.xp_batch_writers,
        depth=settings.xp_batch_depth,
    )
    server = resources.server()
    # RPCs not built yet are inherited from the generated base and answer UNIMPLEMENTED.
    points = PointsService(service, PointAmounts.from_settings(settings))
    servicer = XpServicer(service, resources.sessionmaker, batcher, points)
    server.add_service(
        xp_pb2.DESCRIPTOR.services_by_name["XpService"].full_name,
        lambda s: xp_pb2_grpc.add_XpServiceServicer_to_server(servicer, s),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    for consumer in points_consumers(resources.bus, resources.sessionmaker, points):
        server.add_background(consumer.run)
    groups = community_group_consumer(resources.bus, resources.sessionmaker, CompanyBoards(service))
    server.add_background(groups.run)
    server.add_cleanup(redis.aclose)
    server.add_dependency("redis", redis.ping)
    resources.add_probe("redis_pool", redis_pool_probe("xp", redis))
    # Cleanups run in reverse: the writers stop, then the boards get their last commits,
    # before Redis and the database close.
    server.add_cleanup(leaderboards.mirrored)
    server.add_cleanup(batcher.close)
    return server
