"""A small in-process cache with expiry, for answers a process may reuse briefly: a value read
before an invalidation is never stored after it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values kept for `ttl` seconds, at most `max_entries` of them.

    A value fetched before an `invalidate` is not stored after it: `generation()` taken before
    the fetch and passed to `put` tells the two apart, so a slow read racing a plan change
    cannot put the old plan back.
    """

    def __init__(
        self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0

    def get(self, key: K) -> V | None:
        return self.lookup(key)[1]

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when `key` is cached (the value may be None), else (False, None)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self.clock():
            del self._entries[key]
            return False, None
        return True, entry[1]

    def generation(self) -> int:
        return self._generation

    def put(self, key: K, value: V, generation: int, *, since: float | None = None) -> None:
        """Keep `value` until `ttl` seconds after `since` (by `clock`; default now): a value
        read over a slow call is as old as the moment the call began."""
        if self.ttl <= 0 or generation != self._generation:
            return
        now = self.clock()
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            while len(self._entries) >= self.max_entries:
                # Oldest first: dicts keep insertion order and every put re-inserts.
                del self._entries[next(iter(self._entries))]
        self._entries[key] = ((now if since is None else since) + self.ttl, value)

    def invalidate(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
