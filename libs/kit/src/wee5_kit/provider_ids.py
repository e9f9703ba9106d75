"""Ids that go to a provider (Discord, Whop) inside a URL path, in one place.

An id read from a request, an event or a database row is data, never URL syntax: each one
becomes exactly one path segment, percent-encoded, so `123?x=` cannot start a query string and
`..` cannot climb out of the path (httpx removes literal dot segments before sending).
Discord ids are snowflakes: 17-20 decimal digits today (at most 20: a 64-bit integer).
"""

from __future__ import annotations

import re
from urllib.parse import quote

_SNOWFLAKE = re.compile(r"[0-9]{17,20}")


def is_snowflake(value: str) -> bool:
    """A Discord id (user, guild, role): 17-20 ASCII digits."""
    return _SNOWFLAKE.fullmatch(value) is not None


def path_segment(value: str) -> str:
    """`value` as one URL path segment: every reserved character percent-encoded, and the
    dots of `.`/`..` too (a client would otherwise resolve them). An empty id has no segment."""
    if not value:
        raise ValueError("an id in a URL path cannot be empty")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if set(value) == {"."} else encoded
