"""A small in-process cache with expiry, for answers the gateway may reuse briefly (plans,
entitlements, board visibility, anonymous board pages)."""

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
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self.clock():
            del self._entries[key]
            return None
        return value

    def generation(self) -> int:
        return self._generation

    def put(self, key: K, value: V, generation: int) -> None:
        if self.ttl <= 0 or generation != self._generation:
            return
        now = self.clock()
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            while len(self._entries) >= self.max_entries:
                # Oldest first: dicts keep insertion order and every put re-inserts.
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (now + self.ttl, value)

    def invalidate(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)
