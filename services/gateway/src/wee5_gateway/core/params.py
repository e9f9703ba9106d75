"""Query parameters every context reads the same way."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from wee5_gateway.core.problems import ProblemError
from wee5_kit.proto import to_timestamp


def timestamp_param(value: datetime, name: str) -> Timestamp:
    """The Timestamp of the query parameter `name`; a time a Timestamp cannot hold (e.g.
    year 1 with a positive offset, which is year 0 in UTC) is a 400 naming the parameter."""
    try:
        return to_timestamp(value)
    except (OverflowError, ValueError):
        raise ProblemError(f"{name} must be a time between the years 1 and 9999") from None
