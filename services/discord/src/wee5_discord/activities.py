"""Discord Gateway events → xp activities and intro points (what earns, and with which key).

Bots and webhook messages earn nothing, nor do DMs (only guild events arrive here). The
idempotency key is the Discord message id (a reaction has no id of its own: message, member
and emoji), so a dispatch Discord sends again, e.g. after a RESUME, counts once. Only the
length of a message's text leaves this process, never the text.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from wee5.xp.v1 import xp_pb2

# AwardPoints' reason and key for a member's first message in the introductions channel: the
# key is the member, so an intro earns once whatever the member posts later (and an admin
# awarding `intro:<user>` through the API counts as the same intro).
INTRO_REASON = "intro"


def intro_key(user_id: int | str) -> str:
    return f"intro:{user_id}"


def message_key(message_id: int | str) -> str:
    return f"discord:message:{message_id}"


def reaction_key(message_id: int | str, user_id: int | str, emoji: str) -> str:
    return f"discord:reaction:{message_id}:{user_id}:{emoji}"


def _timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def message_activity(
    community_id: str,
    *,
    message_id: int,
    author_id: int,
    channel_id: int,
    content_length: int,
    at: datetime | None,
    profile: xp_pb2.Profile | None = None,
) -> xp_pb2.Activity:
    return xp_pb2.Activity(
        community_id=community_id,
        user_id=str(author_id),
        kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
        source=xp_pb2.SOURCE_DISCORD,
        idempotency_key=message_key(message_id),
        channel_id=str(channel_id),
        content_length=content_length,
        occurred_at=_timestamp(at),
        profile=profile,
    )


def reaction_activity(
    community_id: str, *, message_id: int, user_id: int, channel_id: int, emoji: str
) -> xp_pb2.Activity:
    return xp_pb2.Activity(
        community_id=community_id,
        user_id=str(user_id),
        kind=xp_pb2.ACTIVITY_KIND_REACTION,
        source=xp_pb2.SOURCE_DISCORD,
        idempotency_key=reaction_key(message_id, user_id, emoji),
        channel_id=str(channel_id),
    )


def profile(display_name: str | None, username: str, avatar_url: str | None) -> xp_pb2.Profile:
    return xp_pb2.Profile(
        display_name=display_name or "", username=username, avatar_url=avatar_url or ""
    )
