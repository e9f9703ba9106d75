"""In-memory columnar snapshots of a community category's submissions, kept exact.

Results and outlier checks read every valid answer of a category, so the service keeps them
as numpy columns (one float column per NUMBER field, NaN when unanswered; one integer column
per ENUM/MULTI_ENUM field, -1 when unanswered) and brings them up to date with one indexed
query per read: the rows whose `revision` is newer than the snapshot's. Writers serialize per
community category on its `category_state` row, so revisions commit in order and a snapshot
at revision R holds exactly what was committed up to R. Each process keeps its own snapshots
(several replicas stay correct: each one catches up from Postgres).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_benchmarks.categories import Category, current_schema
from wee5_benchmarks.repository import BenchmarksRepository, SnapshotRow

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass
class Snapshot:
    community_id: str
    category: Category
    revision: int = 0
    size: int = 0
    numbers: Floats = field(default_factory=lambda: np.empty((0, 0)))
    choices: Ints = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    # Accepted (or approved) and not deleted: what results and outlier checks count.
    valid: Bools = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    rows: dict[uuid.UUID, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, community_id: str, category: Category) -> Snapshot:
        schema = current_schema(category)
        return cls(
            community_id,
            category,
            numbers=np.empty((0, len(schema.numeric_fields))),
            choices=np.empty((0, len(schema.choice_fields)), dtype=np.int64),
        )

    def apply(self, changes: Sequence[SnapshotRow]) -> None:
        """Brings the snapshot to the state of `changes` (rows changed since its revision)."""
        if not changes:
            return
        new_rows = [row for row in changes if row.id not in self.rows]
        self._reserve(self.size + len(new_rows))
        for row in new_rows:
            self.rows[row.id] = self.size
            self.users[row.user_id] = self.size
            self.size += 1
        indexes = np.fromiter((self.rows[row.id] for row in changes), dtype=np.int64)
        width_n, width_c = self.numbers.shape[1], self.choices.shape[1]
        # numpy reads None as NaN in a float array; unanswered choices become -1.
        numbers = np.array(
            [_padded(row.numbers, width_n) for row in changes], dtype=np.float64
        ).reshape(len(changes), width_n)
        choices = np.array(
            [_padded(row.choices, width_c) for row in changes], dtype=np.float64
        ).reshape(len(changes), width_c)
        self.numbers[indexes] = numbers
        self.choices[indexes] = np.nan_to_num(choices, nan=-1).astype(np.int64)
        self.valid[indexes] = [
            row.status == "accepted" and row.numbers is not None for row in changes
        ]
        self.revision = max(self.revision, max(row.revision for row in changes))

    def _reserve(self, needed: int) -> None:
        capacity = len(self.valid)
        if needed <= capacity:
            return
        capacity = max(needed, capacity * 2, 64)
        numbers = np.full((capacity, self.numbers.shape[1]), np.nan)
        numbers[: self.size] = self.numbers[: self.size]
        choices = np.full((capacity, self.choices.shape[1]), -1, dtype=np.int64)
        choices[: self.size] = self.choices[: self.size]
        valid = np.zeros(capacity, dtype=np.bool_)
        valid[: self.size] = self.valid[: self.size]
        self.numbers, self.choices, self.valid = numbers, choices, valid


def _padded(values: Sequence[Any] | None, width: int) -> list[Any]:
    """A stored array as wide as the current schema (rows of an older version are shorter)."""
    values = list(values or ())
    return values[:width] + [None] * (width - len(values))


class Snapshots:
    """The snapshots of one process, least recently used evicted beyond `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._snapshots: OrderedDict[tuple[str, Category], Snapshot] = OrderedDict()
        self._locks: dict[tuple[str, Category], asyncio.Lock] = {}

    async def current(
        self, session: AsyncSession, community_id: str, category: Category
    ) -> Snapshot:
        """The snapshot brought up to what `session` can see. Use it before the next await:
        another caller may bring it further along."""
        key = (community_id, category)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            snapshot = self._snapshots.get(key) or Snapshot.empty(community_id, category)
            changes = await BenchmarksRepository(session).changed_since(
                community_id, category, snapshot.revision
            )
            snapshot.apply(changes)
            self._snapshots[key] = snapshot
            self._snapshots.move_to_end(key)
            while len(self._snapshots) > self.capacity:
                evicted, _ = self._snapshots.popitem(last=False)
                self._locks.pop(evicted, None)
        return snapshot
