"""Whop events (as `whop.map_event` reads them) -> xp's requests, and xp's answers -> the
outcome a delivery is acknowledged and recorded with."""

from __future__ import annotations

from typing import cast

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.webhooks.schemas import Outcome
from wee5_gateway.api.webhooks.whop import ChatActivity, MembershipChange, WhopUser
from wee5_gateway.api.xp.mappers import ACTIVITY_KINDS, ACTIVITY_OUTCOMES, SKIP_REASONS
from wee5_gateway.core.problems import reply_name
from wee5_kit.proto import optional_timestamp, to_timestamp

_INT32_MAX = 2**31 - 1


def membership_request(event: MembershipChange) -> xp_pb2.SetMembershipRequest:
    return xp_pb2.SetMembershipRequest(
        membership=xp_pb2.Membership(
            company_id=event.company_id,
            user_id=event.user_id,
            membership_id=event.membership_id,
            status=event.status,
            active=event.active,
            updated_at=to_timestamp(event.changed_at),
        ),
        community_id=event.community_id or "",
        profile=profile_of(event.user),
    )


def profile_of(user: WhopUser) -> xp_pb2.Profile:
    """What the event says about its user; xp ignores empty fields (they never blank a known
    name)."""
    return xp_pb2.Profile(
        display_name=user.name, username=user.username, avatar_url=user.avatar_url
    )


def activity_of(webhook_id: str, event: ChatActivity, company_id: str | None) -> xp_pb2.Activity:
    """The chat event as an xp activity; the delivery id is its idempotency key."""
    return xp_pb2.Activity(
        community_id=event.community_id,
        user_id=event.user_id,
        kind=ACTIVITY_KINDS.value(event.kind),
        source=xp_pb2.SOURCE_WHOP,
        idempotency_key=webhook_id,
        channel_id=event.channel_id or "",
        content_length=min(event.content_length, _INT32_MAX),
        company_id=company_id or "",
        occurred_at=optional_timestamp(event.occurred_at),
        profile=profile_of(event.author),
    )


def activity_outcome(reply: xp_pb2.RecordActivityResponse) -> tuple[Outcome, str | None]:
    """awarded, skipped (with xp's reason) or duplicate."""
    outcome = cast("Outcome", reply_name(ACTIVITY_OUTCOMES, reply.outcome))
    return outcome, SKIP_REASONS.name_or_none(reply.skip_reason)
