"""Whether a member may download: xp owns the Whop membership (ARCHITECTURE.md §2), so ask
it, with a deadline, on every download."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_resources.errors import MembershipRequired, MembershipUnavailable

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class Memberships:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.xp: XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(channel)

    async def require_active(self, community_id: str, user_id: str) -> None:
        """Returns when the member has an active Whop membership; PERMISSION_DENIED when they
        have none (or it is not active), UNAVAILABLE when xp cannot say."""
        try:
            reply = await self.xp.GetMembership(
                xp_pb2.GetMembershipRequest(community_id=community_id, user_id=user_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise MembershipRequired(
                    "downloads need an active membership; none is known for you here"
                ) from None
            if error.code() in _UNAVAILABLE:
                raise MembershipUnavailable() from None
            raise
        if not reply.membership.active:
            raise MembershipRequired(
                f"downloads need an active membership; yours is {reply.membership.status or 'inactive'}"
            )
