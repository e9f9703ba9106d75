"""The stream context: a community's domain events from JetStream as Server-Sent Events
(feed.py tails the streams, cursor.py is the resumable position, events.py decodes them)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.stream.controller import (
    StreamController,
    end_live_streams,
    live_feed_lifespan,
)

ROUTES: list[ControllerRouterHandler] = [StreamController]

__all__ = ["ROUTES", "end_live_streams", "live_feed_lifespan"]
