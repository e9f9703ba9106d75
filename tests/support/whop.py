"""Whop as seen by our webhook endpoint: signed deliveries and v1 event envelopes.

The signatures are computed here by hand (hmac + base64), not with the `standardwebhooks`
library the gateway uses, so a test proves the gateway agrees with Whop's format rather than
with itself. Key: the UTF-8 bytes of the whole `ws_…` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any


def new_id(prefix: str) -> str:
    """A Whop-looking id such as `msg_4f1c…`, `user_…`, `exp_…`."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def new_secret() -> str:
    """A webhook secret in the form Whop's dashboard shows: `ws_<hex>`."""
    return "ws_" + uuid.uuid4().hex + uuid.uuid4().hex


def sign_standard(
    secret: str, body: bytes, webhook_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers: base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    webhook_id = webhook_id or new_id("msg")
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def sign_legacy(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Legacy `x-whop-signature: t=<unix>,v1=<hex>`: hex HMAC-SHA256 of `{t}.{body}`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-whop-signature": f"t={timestamp},v1={digest}"}


def _iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user(user_id: str) -> dict[str, Any]:
    handle = user_id.removeprefix("user_")
    return {"id": user_id, "name": f"Member {handle}", "username": f"member_{handle}"}


def _envelope(event_type: str, data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "id": new_id("msg"),
        "api_version": "v1",
        "type": event_type,
        "timestamp": _iso(),
        "company_id": new_id("biz"),
        "data": data,
    }
    envelope.update(overrides)
    return envelope


def _channel(experience_id: str | None, channel_id: str | None) -> dict[str, Any]:
    return {
        "id": channel_id or new_id("feed"),
        "type": "chat" if experience_id else "direct_message",
        "experience_id": experience_id,
    }


def _message(message_id: str, user_id: str, content: str) -> dict[str, Any]:
    now = _iso()
    return {
        "id": message_id,
        "content": content,
        "created_at": now,
        "is_edited": False,
        "is_pinned": False,
        "mentions": [],
        "mentions_everyone": False,
        "message_type": "regular",
        "replying_to_message_id": None,
        "updated_at": now,
        "user": _user(user_id),
        "view_count": 0,
        "poll": None,
        "poll_votes": [],
        "reaction_counts": [],
    }


def chat_message_created(
    experience_id: str | None,
    user_id: str,
    message_id: str | None = None,
    content: str = "gm everyone, shipped my first benchmark today",
    *,
    channel_id: str | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """A v1 `chat.message.created` envelope; `experience_id=None` is a direct message.
    Keyword overrides replace envelope fields (`id`, `company_id`, `timestamp`…)."""
    return _envelope(
        "chat.message.created",
        {
            "audience": {"type": "channel", "user_ids": [user_id]},
            "channel": _channel(experience_id, channel_id),
            "message": _message(message_id or new_id("msg"), user_id, content),
            "reason": "channel_message",
        },
        **envelope,
    )


def chat_reaction_created(
    experience_id: str | None,
    user_id: str,
    message_id: str | None = None,
    emoji: str = "🔥",
    *,
    author_id: str | None = None,
    channel_id: str | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """A v1 `chat.reaction.created` envelope: `user_id` reacted to `author_id`'s message."""
    message_id = message_id or new_id("msg")
    author_id = author_id or new_id("user")
    return _envelope(
        "chat.reaction.created",
        {
            "audience": {"type": "channel", "user_ids": [user_id, author_id]},
            "channel": _channel(experience_id, channel_id),
            "message": _message(message_id, author_id, "look at this chart"),
            "reaction": {
                "id": new_id("reac"),
                "emoji": emoji,
                "resource_id": message_id,
                "user": _user(user_id),
            },
            "reason": "message_reaction",
        },
        **envelope,
    )


def membership_event(
    event_type: str,
    user_id: str,
    company_id: str,
    *,
    membership_id: str | None = None,
    status: str = "active",
    at: datetime | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """A v1 `membership.*` envelope (`membership.activated`, `membership.deactivated`, …):
    data is a Membership as Whop sends it; `at` is the envelope's timestamp."""
    now = _iso(at)
    data = {
        "id": membership_id or new_id("mem"),
        "status": status,
        "company": {"id": company_id, "title": "Cold Email Agency Owners"},
        "plan": {"id": new_id("plan")},
        "product": {"id": new_id("prod"), "title": "Agency Owners Club"},
        "user": {**_user(user_id), "email": None},
        "member": {"id": new_id("mber")},
        "renewal_period_start": now,
        "renewal_period_end": None,
        "cancel_at_period_end": False,
        "created_at": now,
        "metadata": {},
    }
    return _envelope(event_type, data, company_id=company_id, timestamp=now, **envelope)
