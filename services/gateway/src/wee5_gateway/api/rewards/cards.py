"""The badges on a member's card (GET /communities/{id}/members/{user_id})."""

from __future__ import annotations

import grpc

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards.mappers import card_badge
from wee5_gateway.api.rewards.schemas import CardBadge
from wee5_gateway.core.clients import Downstream
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.rewards")
CARD_BADGES = 200


async def card_badges(downstream: Downstream, community_id: str, user_id: str) -> list[CardBadge]:
    """The member's badges, oldest award first. The card is xp's; when rewards cannot answer,
    the card is still served, without badges (and the miss is logged)."""
    try:
        reply = await downstream.rewards.ListMemberBadges(
            rewards_pb2.ListMemberBadgesRequest(
                community_id=community_id, user_id=user_id, page_size=CARD_BADGES
            )
        )
    except grpc.aio.AioRpcError as error:
        log.warning("member card served without badges", code=error.code().name)
        return []
    return [card_badge(held) for held in reply.member_badges]
