"""unit_of_work on real Postgres: hooks run after the outcome is final, and only theirs."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.uow import UnitOfWork, unit_of_work


async def test_commit_hooks_run_after_commit_and_see_the_committed_row(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[object] = []

    async def read_back() -> None:
        async with sessionmaker() as other:
            seen.append(await other.scalar(text("SELECT count(*) FROM uow_probe")))

    async with sessionmaker.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS uow_probe (id int)"))
        await setup.execute(text("TRUNCATE uow_probe"))
    async with unit_of_work(sessionmaker) as uow:
        await uow.session.execute(text("INSERT INTO uow_probe VALUES (1)"))
        UnitOfWork.of(uow.session).on_commit(read_back)
        UnitOfWork.of(uow.session).on_rollback(lambda: seen.append("rolled back"))
        assert seen == []
    assert seen == [1]


async def test_rollback_hooks_run_when_the_block_raises_and_commit_hooks_never(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[str] = []

    async def fail_inside_unit_of_work() -> None:
        async with unit_of_work(sessionmaker) as uow:
            uow.on_commit(lambda: seen.append("committed"))
            uow.on_rollback(lambda: seen.append("rolled back"))
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await fail_inside_unit_of_work()
    assert seen == ["rolled back"]


async def test_a_failing_hook_does_not_stop_the_others(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("redis is down")

    async with unit_of_work(sessionmaker) as uow:
        uow.on_commit(broken)
        uow.on_commit(lambda: seen.append("second"))
    assert seen == ["second"]


async def test_a_session_not_opened_by_unit_of_work_has_none(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        with pytest.raises(RuntimeError, match="unit_of_work"):
            UnitOfWork.of(session)
