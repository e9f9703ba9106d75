"""Stream events -> Server-Sent Events messages."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from litestar.response import ServerSentEventMessage

if TYPE_CHECKING:  # events.py renders its data with `event_data`
    from wee5_gateway.api.stream.cursor import Cursor
    from wee5_gateway.api.stream.events import StreamEvent


def event_data(payload: Message) -> str:
    """The SSE `data:`: the event as proto3 JSON with the .proto's field names, defaults
    included so every event of a name has one shape, and int64 as JSON numbers (XP totals
    stay far below 2^53, where JavaScript numbers would lose precision)."""
    return json.dumps(
        MessageToDict(
            payload,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        ),
        separators=(",", ":"),
    )


def sse_message(event: StreamEvent, cursor: Cursor) -> ServerSentEventMessage:
    """The event as an SSE message whose `id:` is the client's cursor after it."""
    return ServerSentEventMessage(data=event.data, event=event.name, id=str(cursor))
