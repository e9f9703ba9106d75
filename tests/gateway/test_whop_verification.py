"""Whop webhook verification and event mapping, without I/O.

Deliveries are signed by tests/support/whop.py, by hand, the way Whop signs them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.whop import (
    chat_message_created,
    chat_reaction_created,
    membership_event,
    new_secret,
    sign_legacy,
    sign_standard,
)
from wee5_gateway.api.webhooks.whop import (
    ChatActivity,
    Ignored,
    InvalidPayload,
    MembershipChange,
    WebhookRejected,
    WhopWebhookVerifier,
    map_event,
)

SECRET = new_secret()


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


@pytest.fixture
def verifier() -> WhopWebhookVerifier:
    return WhopWebhookVerifier(SECRET)


@pytest.fixture
def body() -> bytes:
    return encode(chat_message_created("exp_verify", "user_verify"))


def test_valid_standard_signature_passes(verifier: WhopWebhookVerifier, body: bytes) -> None:
    delivery = verifier.verify(body, sign_standard(SECRET, body, "msg_valid"))

    assert delivery.webhook_id == "msg_valid"
    assert delivery.event_type == "chat.message.created"
    assert delivery.envelope == json.loads(body)


def test_header_names_are_case_insensitive(verifier: WhopWebhookVerifier, body: bytes) -> None:
    headers = {name.title(): value for name, value in sign_standard(SECRET, body).items()}

    assert verifier.verify(body, headers).event_type == "chat.message.created"


def test_signature_made_with_another_secret_is_rejected(
    verifier: WhopWebhookVerifier, body: bytes
) -> None:
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        verifier.verify(body, sign_standard(new_secret(), body))


def test_tampered_body_is_rejected(verifier: WhopWebhookVerifier, body: bytes) -> None:
    headers = sign_standard(SECRET, body)
    tampered = body.replace(b"user_verify", b"user_mallory")

    with pytest.raises(WebhookRejected, match="signature mismatch"):
        verifier.verify(tampered, headers)


def test_timestamp_six_minutes_old_is_rejected_as_stale(
    verifier: WhopWebhookVerifier, body: bytes
) -> None:
    headers = sign_standard(SECRET, body, timestamp=int(time.time()) - 360)

    with pytest.raises(WebhookRejected, match="stale timestamp"):
        verifier.verify(body, headers)


def test_timestamp_six_minutes_ahead_is_rejected_as_future(
    verifier: WhopWebhookVerifier, body: bytes
) -> None:
    headers = sign_standard(SECRET, body, timestamp=int(time.time()) + 360)

    with pytest.raises(WebhookRejected, match="future timestamp"):
        verifier.verify(body, headers)


def test_timestamp_four_minutes_old_is_accepted(verifier: WhopWebhookVerifier, body: bytes) -> None:
    headers = sign_standard(SECRET, body, timestamp=int(time.time()) - 240)

    assert verifier.verify(body, headers).webhook_id == headers["webhook-id"]


def test_one_valid_signature_among_several_passes(
    verifier: WhopWebhookVerifier, body: bytes
) -> None:
    headers = sign_standard(SECRET, body, "msg_rotated")
    stale_key = sign_standard(new_secret(), body, "msg_rotated")["webhook-signature"]
    headers["webhook-signature"] = f"{stale_key} v2,bm90IGEgdjE= {headers['webhook-signature']}"

    assert verifier.verify(body, headers).webhook_id == "msg_rotated"


def test_raw_ws_secret_is_the_hmac_key_as_bytes(body: bytes) -> None:
    secret = "ws_8f2c4e1a9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e"
    headers = sign_standard(secret, body)  # keyed with secret.encode(), as Whop does

    assert WhopWebhookVerifier(secret).verify(body, headers).webhook_id == headers["webhook-id"]
    # Handing the library the raw string builds another key: the trap the verifier avoids.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


@pytest.mark.parametrize("dropped", ["webhook-id", "webhook-timestamp", "webhook-signature", "all"])
def test_missing_headers_are_rejected(
    verifier: WhopWebhookVerifier, body: bytes, dropped: str
) -> None:
    headers = sign_standard(SECRET, body)
    headers = {"content-type": "application/json"} if dropped == "all" else headers
    headers.pop(dropped, None)

    with pytest.raises(WebhookRejected, match="missing headers"):
        verifier.verify(body, headers)


@pytest.mark.parametrize("signature", ["v1", "v1,not base64!", "v1,a,b", "garbage"])
def test_malformed_signature_header_is_rejected_not_crashing(
    verifier: WhopWebhookVerifier, body: bytes, signature: str
) -> None:
    headers = sign_standard(SECRET, body)
    headers["webhook-signature"] = signature

    with pytest.raises(WebhookRejected):
        verifier.verify(body, headers)


def test_non_numeric_timestamp_is_rejected(verifier: WhopWebhookVerifier, body: bytes) -> None:
    headers = sign_standard(SECRET, body)
    headers["webhook-timestamp"] = "yesterday"

    with pytest.raises(WebhookRejected, match="malformed webhook-timestamp"):
        verifier.verify(body, headers)


def test_legacy_signature_passes_and_keys_on_the_envelope_id(
    verifier: WhopWebhookVerifier,
) -> None:
    envelope = chat_message_created("exp_verify", "user_verify", id="msg_legacy1")
    body = encode(envelope)

    delivery = verifier.verify(body, sign_legacy(SECRET, body))

    assert delivery.webhook_id == "msg_legacy1"
    assert delivery.event_type == "chat.message.created"


def test_legacy_envelope_without_id_keys_on_the_body_hash(verifier: WhopWebhookVerifier) -> None:
    body = encode({"action": "membership.went_valid", "data": {"id": "mem_1"}})

    delivery = verifier.verify(body, sign_legacy(SECRET, body))

    assert delivery.webhook_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert delivery.event_type == "membership.went_valid"


@pytest.mark.parametrize("signature", ["0" * 64, "zz-not-hex", "ab" * 31])
def test_legacy_bad_signature_is_rejected(
    verifier: WhopWebhookVerifier, body: bytes, signature: str
) -> None:
    headers = {"x-whop-signature": f"t={int(time.time())},v1={signature}"}

    with pytest.raises(WebhookRejected, match="signature mismatch"):
        verifier.verify(body, headers)


def test_legacy_stale_timestamp_is_rejected(verifier: WhopWebhookVerifier, body: bytes) -> None:
    headers = sign_legacy(SECRET, body, timestamp=int(time.time()) - 360)

    with pytest.raises(WebhookRejected, match="stale timestamp"):
        verifier.verify(body, headers)


def test_legacy_header_without_timestamp_is_rejected(
    verifier: WhopWebhookVerifier, body: bytes
) -> None:
    with pytest.raises(WebhookRejected, match="malformed x-whop-signature"):
        verifier.verify(body, {"x-whop-signature": "v1=abcd"})


def test_authentic_body_that_is_not_json_is_an_invalid_payload(
    verifier: WhopWebhookVerifier,
) -> None:
    body = b'{"type": "chat.message.created", '

    with pytest.raises(InvalidPayload, match="not valid JSON"):
        verifier.verify(body, sign_standard(SECRET, body))


def test_authentic_json_that_is_not_an_object_is_an_invalid_payload(
    verifier: WhopWebhookVerifier,
) -> None:
    body = b'["chat.message.created"]'

    with pytest.raises(InvalidPayload, match="not a JSON object"):
        verifier.verify(body, sign_standard(SECRET, body))


def test_secret_that_looks_like_base64_is_still_used_as_raw_bytes(body: bytes) -> None:
    secret = base64.b64encode(b"sixteen byte key").decode()

    assert WhopWebhookVerifier(secret).verify(body, sign_standard(secret, body)).webhook_id


# --- mapping -------------------------------------------------------------------------------


def test_chat_message_maps_to_a_message_activity_of_the_experience() -> None:
    envelope = chat_message_created(
        "exp_maps", "user_author", content="hello there", channel_id="feed_general"
    )

    activity = map_event(envelope)

    assert isinstance(activity, ChatActivity)
    assert activity.kind == "message"
    assert activity.community_id == "exp_maps"
    assert activity.user_id == "user_author"
    assert activity.channel_id == "feed_general"
    assert activity.content_length == len("hello there")
    assert activity.occurred_at is not None


def test_chat_reaction_maps_to_a_reaction_by_the_reacting_user() -> None:
    envelope = chat_reaction_created("exp_maps", "user_reactor", author_id="user_author")

    activity = map_event(envelope)

    assert isinstance(activity, ChatActivity)
    assert activity.kind == "reaction"
    assert activity.community_id == "exp_maps"
    assert activity.user_id == "user_reactor"
    assert activity.content_length == 0


@pytest.mark.parametrize("build", [chat_message_created, chat_reaction_created])
def test_chat_outside_an_experience_is_ignored(build: Any) -> None:
    assert isinstance(map_event(build(None, "user_dm")), Ignored)


def test_message_without_content_has_length_zero() -> None:
    envelope = chat_message_created("exp_maps", "user_a")
    envelope["data"]["message"]["content"] = None

    activity = map_event(envelope)

    assert isinstance(activity, ChatActivity)
    assert activity.content_length == 0


def test_message_without_user_id_is_an_invalid_payload() -> None:
    envelope = chat_message_created("exp_maps", "user_a")
    del envelope["data"]["message"]["user"]["id"]

    with pytest.raises(InvalidPayload, match=r"data\.message\.user\.id"):
        map_event(envelope)


def test_reaction_without_user_is_an_invalid_payload() -> None:
    envelope = chat_reaction_created("exp_maps", "user_a")
    del envelope["data"]["reaction"]["user"]

    with pytest.raises(InvalidPayload, match=r"data\.reaction\.user"):
        map_event(envelope)


def test_chat_event_without_channel_is_an_invalid_payload() -> None:
    envelope = chat_message_created("exp_maps", "user_a")
    del envelope["data"]["channel"]

    with pytest.raises(InvalidPayload, match=r"data\.channel"):
        map_event(envelope)


@pytest.mark.parametrize("event_type", ["payment.succeeded", "refund.created", "membership.x"])
def test_other_event_types_are_ignored(event_type: str) -> None:
    envelope = chat_message_created("exp_maps", "user_a", type=event_type)

    assert isinstance(map_event(envelope), Ignored)


def test_envelope_without_type_is_an_invalid_payload() -> None:
    envelope = chat_message_created("exp_maps", "user_a")
    del envelope["type"]

    with pytest.raises(InvalidPayload, match="no event type"):
        map_event(envelope)


@pytest.mark.parametrize(
    ("event_type", "status", "active"),
    [
        ("membership.activated", "active", True),
        ("membership.activated", "completed", True),
        ("membership.deactivated", "canceled", False),
        ("membership.cancel_at_period_end_changed", "canceling", True),
        ("membership.cancel_at_period_end_changed", "expired", False),
        ("membership.trial_ending_soon", "trialing", True),
    ],
)
def test_membership_events_map_to_a_membership_change(
    event_type: str, status: str, active: bool
) -> None:
    envelope = membership_event(event_type, "user_a", "biz_1", membership_id="mem_1", status=status)

    change = map_event(envelope)

    assert isinstance(change, MembershipChange)
    assert (change.company_id, change.user_id, change.membership_id) == ("biz_1", "user_a", "mem_1")
    assert (change.status, change.active) == (status, active)
    assert change.changed_at == datetime.fromisoformat(envelope["timestamp"])


def test_membership_event_without_a_company_is_an_invalid_payload() -> None:
    envelope = membership_event("membership.activated", "user_a", "biz_1")
    del envelope["data"]["company"]
    del envelope["company_id"]

    with pytest.raises(InvalidPayload, match="company"):
        map_event(envelope)
