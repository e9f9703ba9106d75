"""Drops a community's cached entitlements as soon as billing announces a change.

Every gateway replica listens to `billing.subscription.changed` on plain NATS (no durable: each
replica must see every change, and a missed one only means the cache entry lives out its
`WEE5_ENTITLEMENTS_CACHE_SECONDS`). The Stripe webhook route also drops the entry of the
community it concerned in the replica that received it, before answering.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import cast

from litestar import Litestar
from nats.aio.msg import Msg

from wee5.events.v1 import events_pb2
from wee5_gateway.core.entitlements import Entitlements, cached_entitlements
from wee5_kit.events import EventBus
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.billing")

SUBSCRIPTION_CHANGED = "billing.subscription.changed"


def entitlements_invalidation_lifespan() -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app lifespan part that listens on the `resources` lifespan's bus."""

    @asynccontextmanager
    async def invalidation(app: Litestar) -> AsyncIterator[None]:
        bus = cast(EventBus, app.state.bus)

        async def on_change(msg: Msg) -> None:
            try:
                event = events_pb2.SubscriptionChanged.FromString(msg.data)
            except Exception:
                log.warning("undecodable billing.subscription.changed ignored")
                return
            entitlements: Entitlements | None = cached_entitlements(app.state)
            if entitlements is not None and event.meta.community_id:
                entitlements.invalidate(event.meta.community_id)
            if entitlements is not None and event.company_id:
                entitlements.invalidate_company(event.company_id)

        subscription = await bus.nc.subscribe(bus.subject(SUBSCRIPTION_CHANGED), cb=on_change)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    return invalidation
