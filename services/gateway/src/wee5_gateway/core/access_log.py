"""What a route adds to its request's access-log line (written by `runtime.RequestContext`),
instead of a line of its own: the busiest route (Whop's webhooks) wrote two lines a request."""

from __future__ import annotations

import contextvars

# The fields of the current request's access-log line, set by `RequestContext`.
access_notes: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "wee5_access_notes", default=None
)


def note_access(**fields: object) -> None:
    """Adds `fields` to the current request's access-log line."""
    notes = access_notes.get()
    if notes is not None:
        notes.update(fields)
