"""Inbound provider webhooks. Nothing is acknowledged (2xx) before its effect is committed."""

from __future__ import annotations

import json
from typing import Any

import grpc
from litestar import Controller, Request, post

from wee5.billing.v1 import billing_pb2
from wee5_gateway.api.billing.checkout import (
    STRIPE_RPC_DEADLINE_SECONDS,
    STRIPE_WEBHOOK_NOT_CONFIGURED,
    billing_reason,
)
from wee5_gateway.api.billing.schemas import StripeWebhookAck
from wee5_gateway.api.webhooks import discord
from wee5_gateway.api.webhooks.intake import WhopIntake, whop_intake
from wee5_gateway.api.webhooks.mappers import (
    activity_of,
    activity_outcome,
    membership_request,
)
from wee5_gateway.api.webhooks.receipts import Receipt, WebhookReceipts
from wee5_gateway.api.webhooks.schemas import Outcome, WebhookAck
from wee5_gateway.api.webhooks.whop import (
    ChatActivity,
    Ignored,
    InvalidPayload,
    MembershipChange,
    WebhookRejected,
    body_key,
    community_hint,
    company_of,
    map_event,
)
from wee5_gateway.core.access_log import note_access
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import DownstreamDep, EntitlementsDep
from wee5_gateway.core.metrics import counts_webhooks
from wee5_gateway.core.problems import (
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    problem_responses,
)
from wee5_gateway.core.protection import throttle_rejected_webhook
from wee5_kit.communities import is_community_id
from wee5_kit.logging import bound_contextvars, get_logger

log = get_logger("wee5.gateway.webhooks")

WHOP = "whop"


class StripeWebhookRejected(WebhookPayloadInvalid):
    slug = "invalid-stripe-webhook"
    title = "Stripe webhook rejected"


def _whop_intake(request: Request[Any, Any, Any]) -> WhopIntake:
    """Taken from the app's state by hand, not as dependencies: Litestar resolves several
    dependencies of one route in a task group, one task each, which cost a redelivery about a
    tenth of its time (profiled), sync as they all are."""
    return whop_intake(request.app.state)


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @post(
        "/discord/interactions",
        status_code=200,
        summary="Receive a Discord interaction (slash commands: /rank, /top, /give-xp, /rewards)",
        description="Verifies Discord's Ed25519 signature (`X-Signature-Ed25519` over "
        "`X-Signature-Timestamp` + the raw body) with the application's public key; a "
        "missing, forged or stale (over 5 minutes) signature is 401. PING is answered PONG. "
        "In a Discord server linked to a community, `/rank [member]` answers with the "
        "member's rank card PNG attached (multipart: `payload_json`, `files[0]`), "
        "`/top [period]` with the board's first ten, `/give-xp member amount reason` (members "
        "with Administrator or Manage Server only) adjusts the member's XP once per "
        "interaction, audited with the Discord user as actor, and `/rewards` lists the level "
        "rewards, the invoker's unlocked ones marked (ephemeral). Refusals and bad input are "
        "ephemeral messages, not HTTP errors; a server linked to no community gets one "
        "saying so. 503 while WEE5_DISCORD_PUBLIC_KEY is unset.",
        responses=problem_responses(400, 401, 413, 503, 504),
    )
    async def receive_discord_interaction(self, request: Request[Any, Any, Any]) -> Any:
        public_key = request.app.state.settings.discord_public_key
        if not public_key:
            raise WebhookNotConfigured(
                "Discord interactions are off: set WEE5_DISCORD_PUBLIC_KEY to the application's "
                "public key shown in the Discord developer portal"
            )
        body = await request.body()
        try:
            discord.verify(public_key, request.headers, body, discord.now())
        except discord.InteractionRejected as error:
            await throttle_rejected_webhook(request)
            raise WebhookSignatureInvalid(str(error)) from None
        try:
            interaction = json.loads(body)
        except ValueError:
            raise WebhookPayloadInvalid("the interaction is not JSON") from None
        if not isinstance(interaction, dict):
            raise WebhookPayloadInvalid("the interaction is not a JSON object")
        return await discord.answer(request.app.state, interaction)

    @post(
        "/whop",
        status_code=200,
        summary="Receive a Whop webhook (Standard Webhooks, or the legacy x-whop-signature)",
        description="Verifies the signature (Standard Webhooks "
        "`webhook-id`/`webhook-timestamp`/`webhook-signature`, or the legacy "
        "`x-whop-signature`) over the raw body, then records the event once per "
        "`webhook-id`: a redelivery is acknowledged without acting twice. Chat "
        "messages and reactions become XP activities; `membership.*` events link a "
        "member to their Whop membership. An authentic delivery that cannot be used (not "
        "JSON, not UTF-8, an id WEE5 cannot store, a field missing) is acknowledged as "
        "`rejected` with the reason (listed in the community's setup checklist), so Whop "
        "does not redeliver it. 401 for a bad signature; 503 (with Retry-After) while no "
        "webhook secret is configured or a dependency is briefly unavailable.",
        responses=problem_responses(401, 413, 429, 503, 504),
    )
    @counts_webhooks("whop")
    async def receive_whop(self, request: Request[Any, Any, Any]) -> WebhookAck:
        intake = _whop_intake(request)
        whop, receipts = intake.verifier, intake.receipts
        if whop is None:
            raise WebhookNotConfigured(
                "Whop webhooks are off: set WEE5_WHOP_WEBHOOK_SECRET to the webhook secret "
                "(ws_…) shown in the Whop developer dashboard"
            )
        body = await request.body()
        try:
            delivery = whop.verify(body, request.headers)
        except WebhookRejected as error:
            log.warning("whop webhook rejected", reason=str(error), webhook_id=_claimed_id(request))
            # Only failed signatures count against the IP; valid deliveries are never throttled.
            await throttle_rejected_webhook(request)
            raise WebhookSignatureInvalid(str(error)) from None
        except InvalidPayload as error:
            return await _unusable(receipts, error.webhook_id or body_key(body), "", str(error))
        try:
            event = map_event(delivery.envelope)
        except InvalidPayload as error:
            return await _unusable(
                receipts,
                delivery.webhook_id,
                delivery.event_type,
                str(error),
                community_hint(delivery.envelope),
            )

        community_id = (
            event.community_id if isinstance(event, ChatActivity | MembershipChange) else None
        )
        fields = {
            "webhook_id": delivery.webhook_id,
            "event_type": delivery.event_type,
            "community_id": community_id,
        }
        # The request's access-log line says what became of the delivery (one line, not two,
        # on the busiest route). A redelivery is answered before its ids are bound to the
        # context of the lines logged meanwhile: it logs none but that one, and the binding
        # was a tenth of its time (profiled).
        if await receipts.seen(WHOP, delivery.webhook_id):
            note_access(**fields, outcome="duplicate")
            return WebhookAck(status="duplicate")
        with bound_contextvars(**fields):
            reason: str | None = None
            company_id = company_of(delivery.envelope)
            if isinstance(event, Ignored):
                outcome: Outcome = "ignored"
                reason = event.reason
            elif isinstance(event, MembershipChange):
                outcome = await _record_membership(intake.downstream, event)
            else:
                outcome, reason = activity_outcome(
                    await intake.activities.record(
                        activity_of(delivery.webhook_id, event, company_id)
                    )
                )

            # Only after xp committed; xp dedupes on the same key if this is ever lost.
            await receipts.record(
                Receipt(
                    WHOP,
                    delivery.webhook_id,
                    delivery.event_type,
                    outcome,
                    community_id,
                    experience=_first_sight(community_id, company_id),
                )
            )
            note_access(**fields, outcome=outcome, reason=reason)
            return WebhookAck(status=outcome)

    @post(
        "/stripe",
        status_code=200,
        operation_id="receiveStripeWebhook",
        summary="Receive a Stripe webhook (verified by billing with the Stripe-Signature header)",
        description="The raw body and `Stripe-Signature` header are handed to billing, which "
        "verifies them and applies the event (subscriptions, plan changes) once per "
        "Stripe event id.",
        responses=problem_responses(400, 429, 503, 504),
    )
    @counts_webhooks("stripe")
    async def receive_stripe(
        self,
        request: Request[Any, Any, Any],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
    ) -> StripeWebhookAck:
        """The raw body and signature go to billing untouched; billing verifies, records the
        event id and applies it once, and only then is Stripe answered 2xx."""
        body = await request.body()
        signature = request.headers.get("stripe-signature", "")
        if not signature:
            await throttle_rejected_webhook(request)
            raise StripeWebhookRejected("the Stripe-Signature header is missing")
        try:
            reply = await downstream.billing.HandleStripeWebhook(
                billing_pb2.HandleStripeWebhookRequest(payload=body, signature_header=signature),
                timeout=STRIPE_RPC_DEADLINE_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            if billing_reason(error) == STRIPE_WEBHOOK_NOT_CONFIGURED:
                raise WebhookNotConfigured(error.details() or "Stripe webhooks are off") from None
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            log.warning("stripe webhook rejected", reason=error.details())
            await throttle_rejected_webhook(request)
            raise StripeWebhookRejected(error.details() or "rejected") from None
        if reply.community_id:
            # This replica answers with the new plan at once; the others hear of it from
            # billing.subscription.changed.
            entitlements.invalidate(reply.community_id)
        log.info(
            "stripe webhook",
            stripe_event_id=reply.event_id,
            event_type=reply.event_type,
            community_id=reply.community_id or None,
            duplicate=reply.duplicate,
        )
        return StripeWebhookAck(
            status="duplicate" if reply.duplicate else "processed",
            event_id=reply.event_id,
            type=reply.event_type,
        )


async def _unusable(
    receipts: WebhookReceipts,
    webhook_id: str,
    event_type: str,
    reason: str,
    community_id: str | None = None,
) -> WebhookAck:
    """An authentic delivery WEE5 cannot use (not JSON, an id it cannot store, a field
    missing): acknowledged, so Whop does not redeliver what would fail again, and recorded as
    rejected with the reason, for the community's admins and the logs."""
    fields = {"webhook_id": webhook_id, "event_type": event_type, "community_id": community_id}
    with bound_contextvars(**fields):
        if await receipts.seen(WHOP, webhook_id):
            note_access(**fields, outcome="duplicate")
            return WebhookAck(status="duplicate")
        await receipts.record(
            Receipt(WHOP, webhook_id, event_type, "rejected", community_id, reason=reason)
        )
        # A warning of its own too: someone should look at why Whop sent what WEE5 cannot use.
        log.warning("whop webhook", outcome="rejected", reason=reason)
        note_access(**fields, outcome="rejected", reason=reason)
        return WebhookAck(status="rejected", reason=reason)


def _claimed_id(request: Request[Any, Any, Any]) -> str | None:
    """The delivery id a rejected request claims, for the log only (it is unverified)."""
    claimed = request.headers.get("webhook-id")
    return claimed[:200] if claimed else None


async def _record_membership(downstream: Downstream, event: MembershipChange) -> Outcome:
    reply = await downstream.xp.SetMembership(membership_request(event))
    return "recorded" if reply.applied else "stale"


# (community, company) pairs this process has recorded: a community's first webhook writes the
# pair once (with its receipt), later ones skip it. Bounded; forgetting only costs one more
# no-op insert.
_SEEN_EXPERIENCES: set[tuple[str, str]] = set()
_SEEN_EXPERIENCES_MAX = 100_000


def _first_sight(community_id: str | None, company_id: str | None) -> tuple[str, str] | None:
    """The pair, the first time this process sees it; None after (and for ids of any other
    shape: a company id has the community id shape)."""
    if community_id is None or company_id is None:
        return None
    if not (is_community_id(community_id) and is_community_id(company_id)):
        return None
    pair = (community_id, company_id)
    if pair in _SEEN_EXPERIENCES:
        return None
    if len(_SEEN_EXPERIENCES) >= _SEEN_EXPERIENCES_MAX:
        _SEEN_EXPERIENCES.clear()
    _SEEN_EXPERIENCES.add(pair)
    return pair
