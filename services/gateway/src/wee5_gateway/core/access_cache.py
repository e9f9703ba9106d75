"""What the access checks read from Postgres, kept in this process: an account's role in a
community and an API key by its hash, so a busy caller costs the database nothing per request.

Postgres announces every change of a role or a key at commit (the `wee5_gateway_access`
NOTIFY of migration 0007, fired by triggers, so no write path can forget it); each replica
listens on a connection of its own and drops the entry it names. The cache is used only while
that connection listens: before it is up, after it drops and until it is back, every check
reads Postgres, so a missed announcement can never keep a revoked role or key alive. A
process that changed a role or key itself also drops the entry before answering (`forget_*`),
so its own next request sees the change whatever the order of delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
from litestar import Litestar
from litestar.datastructures import State
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.core.cache import TtlCache
from wee5_gateway.db.repository import AccessRepository
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.access_cache")

CHANNEL = "wee5_gateway_access"
# How long a platform admin's right is believed before the database is asked again: revoking
# it (or deleting the account) takes effect within this, whatever the access token says.
PLATFORM_ADMIN_SECONDS = 30.0
# A bound on staleness should an announcement be lost in a way the listener cannot see.
ENTRY_SECONDS = 300.0
MAX_ENTRIES = 100_000
RECONNECT_SECONDS = 1.0
# How often the listening connection is checked to be alive.
PING_SECONDS = 10.0
_STATE_KEY = "wee5.access_cache"


@dataclass(frozen=True)
class RoleEntry:
    role: str
    member_user_id: str | None


@dataclass(frozen=True)
class KeyEntry:
    id: uuid.UUID
    community_id: str
    scopes: frozenset[str]
    expires_at: datetime | None = None

    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= datetime.now(UTC)


class AccessCache:
    """Roles by (community, account) and API keys by hash. A key that is not (or no longer)
    live is kept as None too, so made-up keys cost Postgres once; an account without a role
    is not kept, so a grant needs no announcement to be seen."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.listening = False
        self._roles: TtlCache[tuple[str, uuid.UUID], RoleEntry | None] = TtlCache(
            ENTRY_SECONDS, max_entries=MAX_ENTRIES
        )
        self._keys: TtlCache[str, KeyEntry | None] = TtlCache(
            ENTRY_SECONDS, max_entries=MAX_ENTRIES
        )
        self._platform_admins: TtlCache[uuid.UUID, bool] = TtlCache(
            PLATFORM_ADMIN_SECONDS, max_entries=MAX_ENTRIES
        )

    async def platform_admin(self, account_id: uuid.UUID) -> bool:
        """Whether the account is a platform admin in the database (kept briefly)."""
        found, admin = self._platform_admins.lookup(account_id)
        if found:
            return bool(admin)
        generation = self._platform_admins.generation()
        async with self.sessionmaker() as session:
            admin = await AccessRepository(session).is_platform_admin(account_id)
        self._platform_admins.put(account_id, admin, generation)
        return admin

    async def role_of(self, community_id: str, account_id: uuid.UUID) -> RoleEntry | None:
        found, entry = self._roles.lookup((community_id, account_id))
        if found:
            return entry
        generation = self._roles.generation()
        async with self.sessionmaker() as session:
            row = await AccessRepository(session).role_of(community_id, account_id)
        if row is None:
            return None  # not kept: a role granted elsewhere is seen at once, announced or not
        entry = RoleEntry(row.role, row.member_user_id)
        if self.listening:
            self._roles.put((community_id, account_id), entry, generation)
        return entry

    async def api_key(self, key_hash: str) -> KeyEntry | None:
        """The live key with this hash (its last use stamped at most once a minute); a cached
        key stops at its expiry like a stored one."""
        found, entry = self._keys.lookup(key_hash)
        if found:
            return None if entry is not None and entry.expired() else entry
        generation = self._keys.generation()
        async with self.sessionmaker.begin() as session:
            key = await AccessRepository(session).use_api_key(key_hash)
            entry = (
                KeyEntry(key.id, key.community_id, frozenset(key.scopes), key.expires_at)
                if key
                else None
            )
        if self.listening:
            self._keys.put(key_hash, entry, generation)
        return entry

    def forget_role(self, community_id: str, account_id: uuid.UUID) -> None:
        self._roles.invalidate((community_id, account_id))

    def forget_key(self, key_hash: str) -> None:
        self._keys.invalidate(key_hash)

    def forget_everything(self) -> None:
        self._roles.clear()
        self._keys.clear()
        self._platform_admins.clear()

    def announced(self, payload: str) -> None:
        """One NOTIFY: `role <community> <account>` or `key <hash>`."""
        kind, _, rest = payload.partition(" ")
        if kind == "key":
            self.forget_key(rest)
            return
        community_id, _, account = rest.rpartition(" ")
        try:
            self.forget_role(community_id, uuid.UUID(account))
        except ValueError:
            log.warning("unreadable access announcement; dropping every cached entry")
            self.forget_everything()


def provide_access_cache(state: State) -> AccessCache:
    """The app's cache, made on first use (on the app's sessionmaker)."""
    cache = state.get(_STATE_KEY)
    if not isinstance(cache, AccessCache):
        cache = AccessCache(state.sessionmaker)
        state[_STATE_KEY] = cache
    return cache


def access_cache_lifespan(
    database_url: str,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Listens for the announcements while the app runs, reconnecting when the connection
    drops; the cache serves entries only while it listens."""

    @asynccontextmanager
    async def listening(app: Litestar) -> AsyncIterator[None]:
        cache = provide_access_cache(app.state)
        task = asyncio.create_task(_listen(cache, _asyncpg_dsn(database_url)))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return listening


async def _listen(cache: AccessCache, dsn: str) -> None:
    while True:
        try:
            await _listen_once(cache, dsn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("cannot listen for access announcements", error=type(error).__name__)
        await asyncio.sleep(RECONNECT_SECONDS)


async def _listen_once(cache: AccessCache, dsn: str) -> None:
    """One listening connection, until it is lost; the cache serves entries only meanwhile."""
    lost = asyncio.Event()
    connection = await asyncpg.connect(dsn, ssl=False)
    try:
        connection.add_termination_listener(lambda _conn: lost.set())
        await connection.add_listener(
            CHANNEL, lambda _conn, _pid, _channel, payload: cache.announced(payload)
        )
        # Whatever changed while nobody listened is unknown: start empty.
        cache.forget_everything()
        cache.listening = True
        await _until_lost(connection, lost)
        log.warning("access announcements lost; roles and keys read from Postgres")
    finally:
        cache.listening = False
        cache.forget_everything()
        if not connection.is_closed():
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)


async def _until_lost(connection: asyncpg.Connection, lost: asyncio.Event) -> None:
    """Returns when the connection closes, or stops answering (a silent network loss)."""
    while not lost.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.wait(), PING_SECONDS)
            return
        try:
            await connection.execute("SELECT 1", timeout=PING_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return


def _asyncpg_dsn(database_url: str) -> str:
    """`postgresql+asyncpg://…` as asyncpg itself takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
