"""The domain events the live stream carries, decoded from JetStream once for every listener."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg

from wee5.events.v1 import events_pb2
from wee5_gateway.api.stream.mappers import event_data
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.stream")

# Subject (without the prefix) → payload. Other subjects in these streams are not streamed.
STREAMED_EVENTS: dict[str, type[Message]] = {
    "xp.awarded": events_pb2.XpAwarded,
    "xp.level_up": events_pb2.LevelUp,
    "rewards.granted": events_pb2.RewardGranted,
    "rewards.badge_awarded": events_pb2.BadgeAwarded,
    # The member's toast for one of the three above: the community's template, as plain text.
    "rewards.announced": events_pb2.Announced,
}


@dataclass(frozen=True)
class StreamEvent:
    """One event at its place in its context's stream."""

    context: str
    sequence: int
    # The subject without the prefix, e.g. `xp.level_up`: the SSE `event:`.
    name: str
    community_id: str
    payload: Message

    @cached_property
    def data(self) -> str:
        """The SSE `data:`, rendered once for every listener."""
        return event_data(self.payload)


def decode(prefix: str, context: str, msg: Msg) -> StreamEvent | None:
    """The event in a JetStream message of `context`'s stream; None for a subject the stream
    does not carry or a payload that does not parse (logged: a publisher is broken)."""
    name = msg.subject.removeprefix(f"{prefix}.")
    payload_type = STREAMED_EVENTS.get(name)
    if payload_type is None:
        return None
    sequence = msg.metadata.sequence.stream
    payload = payload_type()
    try:
        payload.ParseFromString(msg.data)
    except DecodeError:
        log.error("undecodable event skipped", subject=msg.subject, sequence=sequence)
        return None
    community_id: str = payload.meta.community_id  # type: ignore[attr-defined]
    return StreamEvent(context, sequence, name, community_id, payload)
