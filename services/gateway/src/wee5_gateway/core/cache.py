"""A small in-process cache with expiry, for answers the gateway may reuse briefly (plans,
entitlements, board visibility, roles and keys), and the reads shared by concurrent askers
(board pages and rank cards for a second), and what is derived from such a shared answer once
per answer (the rows of a board page, drawn)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from wee5_kit.cache import TtlCache

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["PerAnswer", "SharedReads", "TtlCache"]


class SharedReads(Generic[K, V]):
    """Answers shared by everyone who asks for the same key: the first asker's read is the
    one call made, and those arriving while it runs wait for the same answer.

    An answer is fresh for `fresh` seconds. After that, until it is `oldest` seconds old, it
    is still served at once while one fresh read runs in the background, so readers never
    queue behind the refresh of a busy key; older than that, readers wait for a new read. Age
    counts from when a read began, so a slow read does not stretch how long what it saw is
    served. A failed read is never kept: the next asker reads again."""

    def __init__(self, fresh: float, oldest: float, *, max_entries: int = 10_000) -> None:
        self.fresh = fresh
        self._answers: TtlCache[K, tuple[float, asyncio.Future[V]]] = TtlCache(
            oldest, max_entries=max_entries
        )
        self._refreshing: set[K] = set()

    async def get(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        entry = self._answers.get(key)
        if entry is not None:
            started, answer = entry
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                if time.monotonic() - started >= self.fresh and key not in self._refreshing:
                    self._refreshing.add(key)
                    refresh = asyncio.ensure_future(self._read(key, read))
                    refresh.add_done_callback(lambda _done: self._refreshing.discard(key))
                return answer.result()
            return await self._wait(key, answer)
        return await self._wait(key, self._read(key, read))

    def _read(self, key: K, read: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        answer = asyncio.ensure_future(read())
        answer.add_done_callback(_observe)
        generation = self._answers.generation()

        def keep(done: asyncio.Future[V]) -> None:
            if not done.cancelled() and done.exception() is None:
                self._answers.put(key, (started, done), generation, since=started)

        started = time.monotonic()
        if key not in self._refreshing:  # a first read is shared while it runs
            self._answers.put(key, (started, answer), generation, since=started)
        answer.add_done_callback(keep)
        return answer

    async def _wait(self, key: K, answer: asyncio.Future[V]) -> V:
        try:
            # Shielded: one asker hanging up does not cancel the answer the others wait for.
            return await asyncio.shield(answer)
        except Exception:
            entry = self._answers.get(key)
            if entry is not None and entry[1] is answer:
                self._answers.invalidate(key)
            raise

    def forget(self, key: K) -> None:
        self._answers.invalidate(key)


class PerAnswer(Generic[V]):
    """What is derived from a shared answer (`SharedReads`), computed once per answer object
    (and `extra`, what else it depends on) however many readers are served that answer: a
    board page's rows, drawn once a second instead of once a reader. Kept for the `size`
    answers derived from last; each entry holds its answer, so an id reused after the answer
    is gone cannot match."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._entries: dict[tuple[int, Any], tuple[object, V]] = {}

    def get(self, answer: object, extra: Any, derive: Callable[[], V]) -> V:
        key = (id(answer), extra)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is answer:
            return entry[1]
        value = derive()
        self._entries.pop(key, None)
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[key] = (answer, value)
        return value


def _observe(future: asyncio.Future[Any]) -> None:
    # Marks a failure as seen when every asker has gone: no "exception never retrieved".
    if not future.cancelled():
        future.exception()
