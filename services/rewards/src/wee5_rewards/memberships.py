"""The member's Whop membership, asked of xp (which learns it from `membership.*` webhooks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from wee5.xp.v1 import xp_pb2

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub


@dataclass(frozen=True)
class KnownMembership:
    membership_id: str
    company_id: str
    status: str
    active: bool


class MembershipUnavailable(Exception):
    """xp could not be asked (down, deadline); the reward waits and asks again."""


class Memberships:
    def __init__(self, xp: XpServiceAsyncStub, *, timeout: float = 5.0) -> None:
        self.xp = xp
        self.timeout = timeout

    async def of(self, community_id: str, user_id: str) -> KnownMembership | None:
        """The member's membership, or None when xp knows none."""
        try:
            reply = await self.xp.GetMembership(
                xp_pb2.GetMembershipRequest(community_id=community_id, user_id=user_id),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise MembershipUnavailable(f"xp GetMembership: {error.code().name}") from None
        membership = reply.membership
        if not membership.membership_id:
            return None
        return KnownMembership(
            membership_id=membership.membership_id,
            company_id=membership.company_id,
            status=membership.status,
            active=membership.active,
        )
