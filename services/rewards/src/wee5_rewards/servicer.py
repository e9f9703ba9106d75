"""RewardsService over gRPC: protobuf in, the rules in service.py, protobuf out.

Only ListRewards and ListRewardRules are real so far; every other RPC is inherited from the
generated base class and answers UNIMPLEMENTED.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.logging import bound_contextvars
from wee5_rewards.errors import CommunityRequired, InvalidPageToken, InvalidRequest
from wee5_rewards.models import Reward
from wee5_rewards.service import RewardRule, RewardsService

_KINDS = {
    "free_days": rewards_pb2.REWARD_KIND_FREE_DAYS,
    "discount_code": rewards_pb2.REWARD_KIND_DISCOUNT_CODE,
}
_STATUSES = {
    "pending": rewards_pb2.REWARD_STATUS_PENDING,
    "applying": rewards_pb2.REWARD_STATUS_APPLYING,
    "granted": rewards_pb2.REWARD_STATUS_GRANTED,
    "failed": rewards_pb2.REWARD_STATUS_FAILED,
    "dead": rewards_pb2.REWARD_STATUS_DEAD,
    "waiting": rewards_pb2.REWARD_STATUS_WAITING,
}
_STATUS_NAMES = {value: name for name, value in _STATUSES.items()}
DEFAULT_PAGE = 50
MAX_PAGE = 200


class RewardsServicer(rewards_pb2_grpc.RewardsServiceServicer):
    def __init__(
        self, service: RewardsService, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker

    async def ListRewardRules(
        self,
        request: rewards_pb2.ListRewardRulesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> rewards_pb2.ListRewardRulesResponse:
        if not request.community_id:
            raise CommunityRequired()
        return rewards_pb2.ListRewardRulesResponse(
            rules=[
                _rule_to_proto(request.community_id, rule)
                for rule in self.service.rules_of(request.community_id)
            ]
        )

    async def ListRewards(
        self, request: rewards_pb2.ListRewardsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> rewards_pb2.ListRewardsResponse:
        if not request.community_id:
            raise CommunityRequired()
        status: str | None = None
        if request.status != rewards_pb2.REWARD_STATUS_UNSPECIFIED:
            status = _STATUS_NAMES.get(request.status)
            if status is None:
                raise InvalidRequest("status is not a known reward status")
        if request.page_size < 0:
            raise InvalidRequest("page_size must not be negative")
        # Larger pages are served at the maximum rather than refused (AIP-158).
        page_size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        before_id = _decode_page_token(request.page_token)
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                rows = await self.service.list_rewards(
                    session,
                    request.community_id,
                    user_id=request.user_id or None,
                    status=status,
                    before_id=before_id,
                    limit=page_size + 1,
                )
        page = rows[:page_size]
        return rewards_pb2.ListRewardsResponse(
            rewards=[_reward_to_proto(row) for row in page],
            next_page_token=_encode_page_token(page[-1].id) if len(rows) > page_size else "",
        )


def _spec_to_proto(
    kind: str, free_days: int | None, discount_percent: int | None
) -> rewards_pb2.RewardSpec:
    spec = rewards_pb2.RewardSpec(kind=_KINDS[kind], free_days=free_days or 0)
    if discount_percent is not None:
        spec.discount.CopyFrom(
            rewards_pb2.Discount(
                type=rewards_pb2.DISCOUNT_TYPE_PERCENT, percent_off=discount_percent
            )
        )
    return spec


def _rule_to_proto(community_id: str, rule: RewardRule) -> rewards_pb2.RewardRule:
    # The default rules are not stored, so they have no id (nor timestamps) yet.
    return rewards_pb2.RewardRule(
        community_id=community_id,
        level=rule.level,
        reward=_spec_to_proto(rule.kind, rule.free_days, rule.discount_percent),
        enabled=True,
    )


def _reward_to_proto(row: Reward) -> rewards_pb2.Reward:
    spec = _spec_to_proto(row.kind, row.free_days, row.discount_percent)
    reward = rewards_pb2.Reward(
        id=str(row.id),
        community_id=row.community_id,
        user_id=row.user_id,
        level=row.level,
        kind=spec.kind,
        status=_STATUSES[row.status],
        free_days=spec.free_days,
        attempts=row.attempts,
        last_error=row.last_error or "",
    )
    if spec.HasField("discount"):
        reward.discount.CopyFrom(spec.discount)
    reward.created_at.FromDatetime(row.created_at)
    return reward


def _encode_page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{last_id}".encode()).decode().rstrip("=")


def _decode_page_token(token: str) -> int | None:
    """The id the next page starts below, or None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        last_id = int(raw[1:]) if raw.startswith("r") else 0
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPageToken() from None
    if last_id <= 0:
        raise InvalidPageToken()
    return last_id
