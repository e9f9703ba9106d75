"""Whop webhooks: proving a delivery came from Whop, and reading what it means for XP.

Pure code, no HTTP framework: the route hands in the raw body and the headers, and turns the
two exception types into problem responses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from wee5_kit.communities import COMMUNITY_ID_RULE, MEMBER_ID_RULE, is_community_id, is_member_id

# Standard Webhooks' fixed window, which Whop's legacy scheme shares.
TOLERANCE_SECONDS = 300
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
LEGACY_HEADER = "x-whop-signature"
# xp keeps idempotency keys of at most this length.
MAX_WEBHOOK_ID_LENGTH = 200

MESSAGE_CREATED = "chat.message.created"
REACTION_CREATED = "chat.reaction.created"
# v1 membership events, and what each says about access (None: the status decides).
MEMBERSHIP_EVENTS: dict[str, bool | None] = {
    "membership.activated": True,
    "membership.deactivated": False,
    "membership.cancel_at_period_end_changed": None,
    "membership.trial_ending_soon": None,
    # Legacy (API v2/v5) actions.
    "membership.went_valid": True,
    "membership.went_invalid": False,
}
# Whop statuses under which a member has access; `canceling` is paid up to the period end.
ACTIVE_STATUSES = frozenset({"trialing", "active", "past_due", "canceling"})


class WebhookRejected(Exception):
    """The delivery cannot be proven to come from Whop; the message says why."""


class InvalidPayload(Exception):
    """The delivery is authentic but its body is not an event we can read: acknowledged and
    recorded as rejected, since a redelivery would not read better. `webhook_id` is the
    delivery's key when the verifier knows it."""

    def __init__(self, reason: str, webhook_id: str | None = None) -> None:
        super().__init__(reason)
        self.webhook_id = webhook_id


@dataclass(frozen=True)
class Delivery:
    """A verified webhook delivery."""

    # The idempotency key: `webhook-id`, or for legacy deliveries the envelope id / body hash.
    webhook_id: str
    event_type: str
    envelope: dict[str, Any]


@dataclass(frozen=True)
class WhopUser:
    """How an event's `user` object describes the user; empty strings are unknown."""

    name: str = ""
    username: str = ""
    avatar_url: str = ""


@dataclass(frozen=True)
class ChatActivity:
    """A chat event that can earn XP."""

    kind: Literal["message", "reaction"]
    community_id: str
    user_id: str
    channel_id: str | None
    # Only the length of a message travels on; its text is never kept or logged.
    content_length: int
    occurred_at: datetime | None
    author: WhopUser = WhopUser()


@dataclass(frozen=True)
class MembershipChange:
    """A Whop user's membership in a company changed (it applies in every experience of it)."""

    company_id: str
    user_id: str
    membership_id: str
    status: str
    active: bool
    # Whop's time of the change: the envelope's timestamp, else the membership's own.
    changed_at: datetime
    # The community the envelope names, if any (legacy envelopes may carry an experience).
    community_id: str | None = None
    user: WhopUser = WhopUser()


@dataclass(frozen=True)
class Ignored:
    """An authentic event that earns nothing; acknowledged so Whop stops redelivering it."""

    reason: str


class WhopWebhookVerifier:
    """Verifies deliveries signed with one Whop webhook secret, in either of Whop's schemes."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the Whop webhook secret is empty")
        # Whop's `ws_…` secret is the HMAC key as it is (its UTF-8 bytes), not base64 like a
        # `whsec_…` one; the library base64-decodes what it is given, so encode it first.
        self._key = secret.encode()
        self._standard = Webhook(base64.b64encode(self._key).decode())

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Verifies the delivery, then parses it.

        Raises WebhookRejected (unauthentic: missing, malformed or stale headers, signature
        mismatch) before the body is parsed, and InvalidPayload for an authentic body that is
        not a JSON event envelope.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        if any(name in lowered for name in STANDARD_HEADERS):
            webhook_id = self.verify_standard(body, lowered)
        elif LEGACY_HEADER in lowered:
            self.verify_legacy(body, lowered[LEGACY_HEADER])
            webhook_id = None
        else:
            raise WebhookRejected(
                "missing headers: expected webhook-id, webhook-timestamp and webhook-signature"
            )
        # Authentic from here on: what cannot be used is rejected under a key of its own.
        key = storable_key(webhook_id) if webhook_id is not None else body_key(body)
        try:
            envelope = parse_envelope(body)
            if webhook_id is None:
                key = storable_key(legacy_idempotency_key(envelope, body))
            return Delivery(key, event_type(envelope), envelope)
        except InvalidPayload as error:
            error.webhook_id = key
            raise

    def verify_standard(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Standard Webhooks; returns the `webhook-id`. `headers` must have lower-case names."""
        missing = [name for name in STANDARD_HEADERS if not headers.get(name)]
        if missing:
            raise WebhookRejected(f"missing headers: {', '.join(missing)}")
        # Checked here first (the library checks too) so the reason can be told apart.
        check_timestamp(headers["webhook-timestamp"], "webhook-timestamp")
        try:
            body.decode()
        except UnicodeDecodeError:
            # The library verifies text only; the signature is over the bytes, checked here.
            if self._signs_standard(body, headers):
                raise InvalidPayload("body is not UTF-8", headers["webhook-id"]) from None
            raise WebhookRejected("signature mismatch: no v1 signature matches the body") from None
        try:
            self._standard.verify(
                body, {name: headers[name] for name in STANDARD_HEADERS}, json_parse=False
            )
        except WebhookVerificationError as error:
            raise WebhookRejected(_library_reason(str(error))) from None
        except ValueError:
            # An entry without its `v1,` prefix or with broken base64.
            raise WebhookRejected(
                "malformed webhook-signature header: expected space-separated v1,<base64>"
            ) from None
        return headers["webhook-id"]

    def _signs_standard(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether a `v1,<base64>` of the webhook-signature header is the Standard Webhooks
        HMAC of these bytes (for bodies the library cannot take: not UTF-8)."""
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        return any(
            hmac.compare_digest(expected, given.encode(errors="replace"))
            for version, _, given in (
                entry.partition(",") for entry in headers["webhook-signature"].split()
            )
            if version == "v1"
        )

    def verify_legacy(self, body: bytes, signature_header: str) -> None:
        """Legacy `x-whop-signature: t=<unix>,v1=<hex>`: hex HMAC-SHA256 of `{t}.{body}`."""
        timestamp: str | None = None
        signatures: list[str] = []
        for part in signature_header.split(","):
            name, _, value = part.strip().partition("=")
            if name == "t":
                timestamp = value
            elif name == "v1":
                signatures.append(value)
        if not timestamp or not signatures:
            raise WebhookRejected("malformed x-whop-signature header: expected t=<unix>,v1=<hex>")
        check_timestamp(timestamp, "x-whop-signature timestamp")
        expected = hmac.new(self._key, timestamp.encode() + b"." + body, hashlib.sha256).digest()
        for signature in signatures:
            try:
                given = bytes.fromhex(signature)
            except ValueError:
                continue
            if hmac.compare_digest(expected, given):
                return
        raise WebhookRejected("signature mismatch: no v1 signature matches the body")


def check_timestamp(value: str, name: str, now: float | None = None) -> None:
    """Rejects a signing time outside ±TOLERANCE_SECONDS, saying which side it fell on."""
    try:
        signed_at = int(value)
    except ValueError:
        raise WebhookRejected(f"malformed {name}: expected unix seconds") from None
    age = (time.time() if now is None else now) - signed_at
    if age > TOLERANCE_SECONDS:
        raise WebhookRejected(
            f"stale timestamp: {name} is {int(age)} s old, more than {TOLERANCE_SECONDS} s"
        )
    if age < -TOLERANCE_SECONDS:
        raise WebhookRejected(
            f"future timestamp: {name} is {int(-age)} s ahead, more than {TOLERANCE_SECONDS} s"
        )


def _library_reason(message: str) -> str:
    lowered = message.lower()
    if "too old" in lowered:
        return f"stale timestamp: older than {TOLERANCE_SECONDS} s"
    if "too new" in lowered:
        return f"future timestamp: more than {TOLERANCE_SECONDS} s ahead"
    if "missing" in lowered:
        return "missing headers: webhook-id, webhook-timestamp and webhook-signature are required"
    if "no matching signature" in lowered:
        return "signature mismatch: no v1 signature matches the body"
    return f"invalid signature headers ({message})"


def parse_envelope(body: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(body)
    except ValueError:
        raise InvalidPayload("body is not valid JSON") from None
    except RecursionError:
        raise InvalidPayload("body is JSON nested too deeply") from None
    if not isinstance(envelope, dict):
        raise InvalidPayload("body is not a JSON object")
    return envelope


def event_type(envelope: Mapping[str, Any]) -> str:
    """`type` of a v1 envelope, `action` of a legacy one."""
    value = envelope.get("type") or envelope.get("action")
    if not isinstance(value, str) or not value:
        raise InvalidPayload("envelope has no event type (`type`)")
    return value


def legacy_idempotency_key(envelope: Mapping[str, Any], body: bytes) -> str:
    """Legacy deliveries carry no webhook-id: the envelope's own id, else a hash of the body
    (a redelivery resends the same bytes)."""
    envelope_id = envelope.get("id")
    if isinstance(envelope_id, str) and envelope_id:
        return envelope_id
    return body_key(body)


def storable_key(key: str) -> str:
    """`key`, or its hash where a store could not hold it (too long, control characters):
    still one key per delivery."""
    if len(key) <= MAX_WEBHOOK_ID_LENGTH and key.isprintable():
        return key
    return body_key(key.encode(errors="replace"))


def body_key(body: bytes) -> str:
    """A delivery key made from bytes (a redelivery resends the same ones)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def community_hint(envelope: Mapping[str, Any]) -> str | None:
    """The community a delivery is about, when it names one WEE5 can store (for the admins
    of a community to see the deliveries about it that were rejected)."""
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        return None
    channel = data.get("channel")
    for candidate in (
        data.get("experience_id"),
        channel.get("experience_id") if isinstance(channel, Mapping) else None,
    ):
        if isinstance(candidate, str) and is_community_id(candidate):
            return candidate
    return None


def map_event(envelope: Mapping[str, Any]) -> ChatActivity | MembershipChange | Ignored:
    """What a Whop event means for WEE5: a chat activity, a membership change, or nothing.

    Raises InvalidPayload when a type we handle lacks a field we need.
    """
    kind = event_type(envelope)
    if kind == MESSAGE_CREATED:
        return _chat_activity(envelope, kind, "message")
    if kind == REACTION_CREATED:
        return _chat_activity(envelope, kind, "reaction")
    if kind in MEMBERSHIP_EVENTS:
        return _membership_change(envelope, kind, MEMBERSHIP_EVENTS[kind])
    return Ignored(f"event type {kind} is not handled")


def company_of(envelope: Mapping[str, Any]) -> str | None:
    """The Whop company an envelope belongs to (`company_id`), if it says."""
    company_id = envelope.get("company_id")
    return company_id if isinstance(company_id, str) and company_id else None


def _membership_change(
    envelope: Mapping[str, Any], kind: str, grants_access: bool | None
) -> MembershipChange:
    data = _object(envelope, "data", kind)
    membership_id = data.get("id")
    if not isinstance(membership_id, str) or not membership_id:
        raise InvalidPayload(f"{kind}: data.id (the membership id) is missing")
    user = data.get("user")
    user_id = user.get("id") if isinstance(user, dict) else user
    if not isinstance(user_id, str) or not user_id:
        raise InvalidPayload(f"{kind}: data.user.id is missing")
    if not is_member_id(user_id):
        raise InvalidPayload(f"{kind}: data.user.id: {MEMBER_ID_RULE}")
    company = data.get("company")
    company_id = company.get("id") if isinstance(company, dict) else data.get("company_id")
    if not isinstance(company_id, str) or not company_id:
        company_id = company_of(envelope)
    if company_id is None:
        raise InvalidPayload(f"{kind}: neither data.company.id nor company_id names the company")
    status = data.get("status")
    if not isinstance(status, str) or not status:
        if grants_access is None:
            raise InvalidPayload(f"{kind}: data.status is missing")
        status = "active" if grants_access else "expired"
    changed_at = (
        _time(envelope.get("timestamp"))
        or _time(data.get("updated_at"))
        or _time(data.get("created_at"))
    )
    if changed_at is None:
        raise InvalidPayload(f"{kind}: no timestamp says when the membership changed")
    experience = data.get("experience_id")
    if experience not in (None, "") and not is_community_id(experience):
        raise InvalidPayload(f"{kind}: data.experience_id: {COMMUNITY_ID_RULE}")
    return MembershipChange(
        company_id=company_id,
        user_id=user_id,
        membership_id=membership_id,
        status=status,
        active=grants_access if grants_access is not None else status in ACTIVE_STATUSES,
        changed_at=changed_at,
        community_id=experience if isinstance(experience, str) and experience else None,
        user=whop_user(user),
    )


def _chat_activity(
    envelope: Mapping[str, Any], kind: str, activity: Literal["message", "reaction"]
) -> ChatActivity | Ignored:
    data = _object(envelope, "data", kind)
    channel = _object(data, "channel", kind, "data.")
    experience_id = channel.get("experience_id")
    if experience_id is None or experience_id == "":
        # Direct messages and support chats belong to no experience, so to no community.
        return Ignored("chat outside any experience (direct message or support)")
    if not is_community_id(experience_id):
        raise InvalidPayload(f"{kind}: data.channel.experience_id: {COMMUNITY_ID_RULE}")
    channel_id = channel.get("id")
    if activity == "message":
        message = _object(data, "message", kind, "data.")
        user = _object(message, "user", kind, "data.message.")
        content = message.get("content")
        content_length = len(content) if isinstance(content, str) else 0
        occurred_at = _time(message.get("created_at")) or _time(envelope.get("timestamp"))
        user_path = "data.message.user.id"
    else:
        reaction = _object(data, "reaction", kind, "data.")
        user = _object(reaction, "user", kind, "data.reaction.")
        content_length = 0
        occurred_at = _time(envelope.get("timestamp"))
        user_path = "data.reaction.user.id"
    user_id = user.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidPayload(f"{kind}: {user_path} is missing")
    if not is_member_id(user_id):
        raise InvalidPayload(f"{kind}: {user_path}: {MEMBER_ID_RULE}")
    return ChatActivity(
        kind=activity,
        community_id=experience_id,
        user_id=user_id,
        channel_id=channel_id if isinstance(channel_id, str) and channel_id else None,
        content_length=content_length,
        occurred_at=occurred_at,
        author=whop_user(user),
    )


def whop_user(user: object) -> WhopUser:
    """The name, username and profile picture of a `user` object (Whop sends them when it
    has them; a bare id string says nothing)."""
    if not isinstance(user, dict):
        return WhopUser()
    picture = user.get("profile_picture")
    avatar = picture.get("url") if isinstance(picture, dict) else None
    return WhopUser(_text(user.get("name")), _text(user.get("username")), _text(avatar))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _object(parent: Mapping[str, Any], key: str, kind: str, prefix: str = "") -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise InvalidPayload(f"{kind}: {prefix}{key} is missing or not an object")
    return value


def _time(value: object) -> datetime | None:
    """ISO 8601 (v1) or unix seconds (legacy); None when absent or unreadable, since the time
    only annotates the activity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
