"""Failures of our own infrastructure that pass by themselves: one table for every process.

A terminated Postgres backend, Redis restarting, NATS away: the request was fine and will
succeed when tried again shortly. Inside, such a failure is UNAVAILABLE (gRPC servers,
`wee5_kit.grpc`); outside, 503 with `Retry-After` (the gateway). Anything not in the table is a
bug of ours and stays INTERNAL / 500.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import nats.errors
import nats.js.errors
import redis.exceptions
import sqlalchemy.exc

# What a caller is told to wait before trying again (HTTP `Retry-After`).
RETRY_AFTER_SECONDS = 3

# (exception types, the dependency that failed), first match wins.
TRANSIENT: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    (
        (
            # Connection lost, refused or closed (08xxx), and the state errors asyncpg raises
            # on a connection whose backend was terminated mid-query.
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
            # Shutting down, starting up, crashed (57Pxx); too many connections (53300).
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.TooManyConnectionsError,
            # The pool had no connection to give within its timeout.
            sqlalchemy.exc.TimeoutError,
        ),
        "database",
    ),
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError), "redis"),
    (
        (
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.NoServersError,
            nats.errors.StaleConnectionError,
            nats.errors.OutboundBufferLimitError,
            nats.js.errors.ServiceUnavailableError,
        ),
        "events",
    ),
    # A socket refused or reset before any client library could say whose it was.
    ((ConnectionError,), "network"),
)


def unavailable_dependency(error: BaseException) -> str | None:
    """The dependency whose outage caused `error` ("database", "redis", "events", "network"),
    or None when it is not a transient failure. Follows what SQLAlchemy and the clients wrap
    (`orig`, `__cause__`, `__context__`)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return "database"
        for kinds, dependency in TRANSIENT:
            if isinstance(current, kinds):
                return dependency
        orig = getattr(current, "orig", None)
        pending.extend(
            (
                current.__context__,
                current.__cause__,
                orig if isinstance(orig, BaseException) else None,
            )
        )
    return None
