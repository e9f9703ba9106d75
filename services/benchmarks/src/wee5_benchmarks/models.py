"""Tables of the `benchmarks` schema: so far only the event plumbing its issue will use."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "benchmarks"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
