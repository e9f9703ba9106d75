"""The rewards process: gRPC server, outbox relay, the consumers of `xp.level_up` and
`xp.awarded` and `xp.membership_changed`, the Whop delivery worker and the Discord role worker."""

from __future__ import annotations

from datetime import timedelta

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.discord_rest import DiscordClient
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings
from wee5_rewards.announcement_queue import Announcer
from wee5_rewards.announcing import AnnouncementDelivery
from wee5_rewards.badge_catalog import BadgeCatalog
from wee5_rewards.config import RewardsSettings
from wee5_rewards.delivery import RetryPolicy, RewardDelivery
from wee5_rewards.events import (
    level_up_consumer,
    membership_changed_consumer,
    xp_awarded_consumer,
)
from wee5_rewards.memberships import Memberships
from wee5_rewards.metrics import rewards_by_status_probe
from wee5_rewards.models import outbox
from wee5_rewards.roles import RoleDelivery, RolePolicy
from wee5_rewards.service import RewardsService
from wee5_rewards.servicer import RewardsServicer
from wee5_rewards.whop import WhopClient


async def build(settings: KitSettings) -> GrpcServer:
    config = settings if isinstance(settings, RewardsSettings) else RewardsSettings()
    resources = await Resources.open("rewards", config)
    await resources.bus.ensure_stream("rewards")
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    xp_channel = resources.channel("xp", retrying=[xp_pb2.DESCRIPTOR.services_by_name["XpService"]])
    xp = xp_pb2_grpc.XpServiceStub(xp_channel)
    announcer = Announcer(
        burst=config.announcement_burst,
        window=timedelta(seconds=config.announcement_burst_window_seconds),
        events=events,
        xp=xp,
        xp_timeout=config.grpc_deadline_seconds,
    )
    badges = BadgeCatalog(config.badge_cache_seconds)
    badge_changes = await badges.listen(resources.bus)
    service = RewardsService(
        events, xp, xp_timeout=config.grpc_deadline_seconds, announcer=announcer, badges=badges
    )
    whop = (
        WhopClient(
            config.whop_api_url,
            config.whop_api_key.get_secret_value(),
            timeout=config.whop_call_timeout_seconds,
        )
        if config.whop_api_key
        else None
    )
    discord = (
        DiscordClient(
            config.discord_api_url,
            config.discord_bot_token.get_secret_value(),
            timeout=config.discord_call_timeout_seconds,
        )
        if config.discord_bot_token
        else None
    )
    delivery = RewardDelivery(
        resources.sessionmaker,
        events,
        Memberships(xp, timeout=config.grpc_deadline_seconds),
        whop,
        RetryPolicy(
            max_attempts=config.reward_max_attempts,
            base_seconds=config.reward_backoff_base_seconds,
            max_seconds=config.reward_backoff_max_seconds,
            lease_seconds=config.reward_lease_seconds,
            membership_recheck_seconds=config.membership_recheck_seconds,
            poll_seconds=config.reward_poll_seconds,
        ),
        company_id=config.whop_company_id,
        announcer=announcer,
    )
    announcements = AnnouncementDelivery(
        resources.sessionmaker,
        whop,
        xp,
        RetryPolicy(
            max_attempts=config.announcement_max_attempts,
            base_seconds=config.reward_backoff_base_seconds,
            max_seconds=config.reward_backoff_max_seconds,
            lease_seconds=config.reward_lease_seconds,
            poll_seconds=config.reward_poll_seconds,
        ),
        discord=discord,
    )
    roles = RoleDelivery(
        resources.sessionmaker,
        discord,
        RolePolicy(max_attempts=config.role_max_attempts, poll_seconds=config.reward_poll_seconds),
    )
    server = resources.server()
    resources.add_probe("by_status", rewards_by_status_probe(resources.sessionmaker))
    server.add_service(
        rewards_pb2.DESCRIPTOR.services_by_name["RewardsService"].full_name,
        lambda s: rewards_pb2_grpc.add_RewardsServiceServicer_to_server(
            RewardsServicer(service, resources.sessionmaker, delivery.wake),
            s,
        ),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    server.add_background(level_up_consumer(resources.bus, resources.sessionmaker, service).run)
    server.add_background(xp_awarded_consumer(resources.bus, resources.sessionmaker, service).run)
    server.add_background(
        membership_changed_consumer(resources.bus, resources.sessionmaker, service).run
    )
    if config.rewards_workers:
        server.add_background(delivery.run)
        server.add_background(roles.run)
        server.add_background(announcements.run)

    async def close_clients() -> None:
        for client in (whop, discord):
            if client is not None:
                await client.close()
        await xp_channel.close(None)
        await badges.stop(badge_changes)

    server.add_cleanup(close_clients)
    return server
