"""What the Whop webhook route works with, made once at startup: the verifier of Whop's
signatures, the receipts of acknowledged deliveries, and the sender of activities to xp (which
the API's single activity intake shares: activities from both leave together)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import cast

from litestar import Litestar
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine

from wee5_gateway.api.webhooks.coalescing import ActivitySender
from wee5_gateway.api.webhooks.receipts import WebhookReceipts, receipt_redis
from wee5_gateway.api.webhooks.whop import WhopWebhookVerifier
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.clients import Downstream
from wee5_kit.redis import Keys

_STATE_KEY = "whop_intake"


@dataclass(frozen=True)
class WhopIntake:
    # None while no webhook secret is configured (the route answers 503 saying so).
    verifier: WhopWebhookVerifier | None
    receipts: WebhookReceipts
    activities: ActivitySender
    downstream: Downstream


def whop_intake(state: State) -> WhopIntake:
    return cast(WhopIntake, state[_STATE_KEY])


def activity_sender(state: State) -> ActivitySender:
    """The app's one sender of single activities to xp (api/webhooks/coalescing.py)."""
    return whop_intake(state).activities


def whop_intake_lifespan(
    settings: GatewaySettings,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app lifespan part that makes the intake on the `resources` lifespan's database and
    channels, and at shutdown waits for the calls still out and writes the last receipts."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        secret = settings.whop_webhook_secret
        raw_secret = secret.get_secret_value() if secret else ""
        downstream = cast(Downstream, app.state.downstream)
        redis = receipt_redis(settings.redis_url)
        receipts = WebhookReceipts(
            cast(AsyncEngine, app.state.engine),
            redis,
            Keys(settings.redis_prefix),
            ttl_seconds=settings.webhook_receipt_ttl_seconds,
            recent=settings.webhook_receipt_recent,
            max_pending=settings.webhook_receipt_max_pending,
            batch_size=settings.webhook_receipt_batch,
        )
        activities = ActivitySender(
            downstream.xp,
            max_in_flight=settings.webhook_xp_calls,
            max_batch=settings.webhook_xp_batch,
            hold=settings.webhook_xp_hold_ms / 1000,
            extra_from=settings.webhook_xp_extra_from,
        )
        receipts.writer.start()
        app.state[_STATE_KEY] = WhopIntake(
            WhopWebhookVerifier(raw_secret) if raw_secret else None,
            receipts,
            activities,
            downstream,
        )
        try:
            yield
        finally:
            await activities.close()
            await receipts.writer.close(settings.shutdown_grace_seconds)
            await receipts.commands.close()
            await redis.aclose()

    return lifespan
