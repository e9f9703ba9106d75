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
import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_benchmarks.categories import Category, current_schema
from wee5_benchmarks.repository import (
    USER_SEPARATOR,
    BenchmarksRepository,
    CategoryColumns,
    SnapshotRow,
)

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
    # Submission id (text) → row.
    rows: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    # Arrays derived from the columns at this revision (answered masks, sort orders), built
    # on first use and dropped by the next change.
    derived: dict[tuple[str, int], Any] = field(default_factory=dict)

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
        sorted_columns = {
            key[1]: value for key, value in self.derived.items() if key[0] == "sorted"
        }
        self.derived.clear()
        rows = self.rows
        ids = [str(row.id) for row in changes]
        new_rows = [(key, row) for key, row in zip(ids, changes, strict=True) if key not in rows]
        self._reserve(self.size + len(new_rows))
        first = self.size
        rows.update(zip((key for key, _ in new_rows), itertools.count(first), strict=False))
        self.users.update(
            zip((row.user_id for _, row in new_rows), itertools.count(first), strict=False)
        )
        self.size += len(new_rows)
        indexes = np.fromiter((rows[key] for key in ids), dtype=np.int64, count=len(changes))
        self.numbers[indexes] = _matrix([row.numbers for row in changes], self.numbers.shape[1])
        choices = _matrix([row.choices for row in changes], self.choices.shape[1])
        self.choices[indexes] = np.nan_to_num(choices, nan=-1).astype(np.int64)
        self.valid[indexes] = np.fromiter(
            (row.status == "accepted" and row.numbers is not None for row in changes),
            dtype=np.bool_,
            count=len(changes),
        )
        self.revision = max(self.revision, max(row.revision for row in changes))
        if len(changes) <= max(1000, self.size // 100):
            for column, (order, ordered) in sorted_columns.items():
                self.derived[("sorted", column)] = self._resorted(column, order, ordered, indexes)

    def _resorted(
        self, column: int, order: Ints, ordered: Floats, changed: Ints
    ) -> tuple[Ints, Floats]:
        """A column's sort order after a few rows changed: the changed rows are taken out and
        put back where their new values belong (linear, instead of sorting everything again)."""
        is_changed = np.zeros(self.size, dtype=np.bool_)
        is_changed[changed] = True
        keep = ~is_changed[order]
        order, ordered = order[keep], ordered[keep]
        changed = np.flatnonzero(is_changed)
        values = self.numbers[changed, column]
        by_value = np.argsort(values, kind="stable")
        changed, values = changed[by_value], values[by_value]
        # NaN sorts last in both arrays, so unanswered rows stay at the end.
        positions = np.searchsorted(ordered, values, side="right")
        return np.insert(order, positions, changed), np.insert(ordered, positions, values)

    @classmethod
    def from_columns(
        cls, community_id: str, category: Category, columns: CategoryColumns
    ) -> Snapshot:
        """A snapshot of a whole category read column by column (see CategoryColumns)."""
        snapshot = cls.empty(community_id, category)
        count = columns.count
        if not count:
            return snapshot
        width_n, width_c = snapshot.numbers.shape[1], snapshot.choices.shape[1]
        snapshot._reserve(count)
        snapshot.size = count
        snapshot.rows = {key: index for index, key in enumerate(columns.ids.split(","))}
        snapshot.users = {
            user: index for index, user in enumerate(columns.user_ids.split(USER_SEPARATOR))
        }
        snapshot.valid[:count] = np.frombuffer(columns.valid.encode(), dtype=np.uint8) == ord("1")
        snapshot.numbers[:count] = np.array(columns.numbers.split(","), dtype=np.float64).reshape(
            count, width_n
        )
        snapshot.choices[:count] = np.array(columns.choices.split(","), dtype=np.int64).reshape(
            count, width_c
        )
        snapshot.revision = columns.revision
        return snapshot

    def answered(self, column: int) -> Bools:
        """Valid rows that answer NUMBER column `column`."""
        key = ("answered", column)
        if key not in self.derived:
            numbers = self.numbers[: self.size, column]
            self.derived[key] = self.valid[: self.size] & ~np.isnan(numbers)
        answered: Bools = self.derived[key]
        return answered

    def sorted_column(self, column: int) -> tuple[Ints, Floats]:
        """Row indexes of NUMBER column `column` in ascending order of value (unanswered
        last), and the values in that order: a query's cell is then a mask over them, and its
        quantiles are positions instead of a partition per query."""
        key = ("sorted", column)
        if key not in self.derived:
            numbers = self.numbers[: self.size, column]
            order = np.argsort(numbers, kind="stable")
            self.derived[key] = (order, numbers[order])
        pair: tuple[Ints, Floats] = self.derived[key]
        return pair

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


def _matrix(arrays: list[Sequence[Any] | None], width: int) -> Floats:
    """Stored arrays as one float matrix as wide as the current schema (numpy reads None as
    NaN; rows of an older version are shorter, a deleted row has none)."""
    if any(values is None or len(values) != width for values in arrays):
        arrays = [_padded(values, width) for values in arrays]
    return np.array(arrays, dtype=np.float64).reshape(len(arrays), width)


def _padded(values: Sequence[Any] | None, width: int) -> list[Any]:
    values = list(values or ())
    return values[:width] + [None] * (width - len(values))


class Snapshots:
    """The snapshots of one process; beyond `max_rows` submissions in all, the least recently
    used go (the one just read always stays)."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._snapshots: OrderedDict[tuple[str, Category], Snapshot] = OrderedDict()
        self._locks: dict[tuple[str, Category], asyncio.Lock] = {}

    def cached(self) -> list[tuple[str, Category]]:
        """The community categories held, least recently read first."""
        return list(self._snapshots)

    async def current(
        self, session: AsyncSession, community_id: str, category: Category
    ) -> Snapshot:
        """The snapshot brought up to what `session` can see. Use it before the next await:
        another caller may bring it further along."""
        key = (community_id, category)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            repo = BenchmarksRepository(session)
            snapshot = self._snapshots.get(key)
            if snapshot is None:
                schema = current_schema(category)
                columns = await repo.category_columns(
                    community_id, category, len(schema.numeric_fields), len(schema.choice_fields)
                )
                if columns is not None:
                    snapshot = Snapshot.from_columns(community_id, category, columns)
            snapshot = snapshot or Snapshot.empty(community_id, category)
            snapshot.apply(await repo.changed_since(community_id, category, snapshot.revision))
            self._snapshots[key] = snapshot
            self._snapshots.move_to_end(key)
            held = sum(kept.size for kept in self._snapshots.values())
            while held > self.max_rows and len(self._snapshots) > 1:
                evicted, dropped = self._snapshots.popitem(last=False)
                held -= dropped.size
                self._locks.pop(evicted, None)
        return snapshot
