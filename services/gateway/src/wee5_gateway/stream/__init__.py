"""The live stream: a community's domain events from JetStream as Server-Sent Events."""

from wee5_gateway.stream.controller import StreamController, end_live_streams, live_feed_lifespan
from wee5_gateway.stream.feed import LiveFeed

__all__ = ["LiveFeed", "StreamController", "end_live_streams", "live_feed_lifespan"]
