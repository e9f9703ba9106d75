"""Result snapshots against the real database: a category read whole (column by column, as a
fresh process does) equals one read row by row, and a cached sort order kept up to date
through changes equals sorting again."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.benchmarks.conftest import OPERATIONAL, pay, submit
from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_benchmarks.categories import Category
from wee5_benchmarks.repository import BenchmarksRepository
from wee5_benchmarks.snapshot import Snapshot, Snapshots

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

Sessions = async_sessionmaker[AsyncSession]


async def seed(stub: Stub, community: str) -> None:
    for n in range(12):
        extra = {"team_size": n + 1} if n % 2 else {"commission_rate": 5.5}
        await submit(stub, community, f"u{n}", pay(40_000 + 1_500 * n, **extra))
    mine = await stub.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(community_id=community, user_id="u3")
    )
    await stub.DeleteSubmission(
        benchmarks_pb2.DeleteSubmissionRequest(
            community_id=community, user_id="u3", submission_id=mine.submissions[0].id
        )
    )


async def test_whole_category_read_by_columns_equals_reading_row_by_row(
    benchmarks: Stub, community: str, sessionmaker: Sessions
) -> None:
    await seed(benchmarks, community)
    async with sessionmaker() as session:
        fresh = await Snapshots(1000).current(session, community, Category.COMPENSATION)
        by_rows = Snapshot.empty(community, Category.COMPENSATION)
        by_rows.apply(
            await BenchmarksRepository(session).changed_since(community, Category.COMPENSATION, 0)
        )
    assert fresh.size == by_rows.size == 12
    assert fresh.revision == by_rows.revision
    assert fresh.users.keys() == by_rows.users.keys()
    for submission_id, row in fresh.rows.items():
        other = by_rows.rows[submission_id]
        assert fresh.valid[row] == by_rows.valid[other]
        np.testing.assert_array_equal(fresh.numbers[row], by_rows.numbers[other])
        np.testing.assert_array_equal(fresh.choices[row], by_rows.choices[other])
    assert int(fresh.valid[: fresh.size].sum()) == 11


async def test_sort_order_kept_through_changes_equals_sorting_again(
    benchmarks: Stub, community: str, sessionmaker: Sessions
) -> None:
    snapshots = Snapshots(1000)
    await seed(benchmarks, community)
    async with sessionmaker() as session:
        snapshot = await snapshots.current(session, community, Category.COMPENSATION)
    before = {column: snapshot.sorted_column(column) for column in range(5)}
    await submit(benchmarks, community, "u0", pay(99_000, team_size=7))
    await submit(benchmarks, community, "late", pay(41_234))
    async with sessionmaker() as session:
        snapshot = await snapshots.current(session, community, Category.COMPENSATION)
    for column in range(5):
        order, ordered = snapshot.sorted_column(column)
        assert len(order) == snapshot.size == 13
        assert sorted(order.tolist()) == list(range(13))
        expected = np.sort(snapshot.numbers[: snapshot.size, column])
        np.testing.assert_array_equal(ordered, expected)
        np.testing.assert_array_equal(snapshot.numbers[order, column], ordered)
        assert before[column][0] is not order


async def test_least_recently_read_categories_are_dropped_beyond_the_row_budget(
    benchmarks: Stub, community: str, sessionmaker: Sessions
) -> None:
    await seed(benchmarks, community)
    await submit(
        benchmarks, community, "u0", {"channel": "linkedin", "reply_rate": 4.0}, OPERATIONAL
    )
    snapshots = Snapshots(max_rows=12)
    compensation = (community, Category.COMPENSATION)
    operational = (community, Category.OPERATIONAL)
    async with sessionmaker() as session:
        await snapshots.current(session, *compensation)
        await snapshots.current(session, *operational)
        assert snapshots.cached() == [operational]
        # Read again, the larger one comes back and the other makes room for it.
        await snapshots.current(session, *compensation)
        assert snapshots.cached() == [compensation]
