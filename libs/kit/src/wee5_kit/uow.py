"""One unit of work: a transaction with hooks that run after it commits or rolls back.

Side effects outside Postgres (Redis boards, cache invalidations, waking a worker) must see
only what committed. Code deep in a service registers them on the session it was handed
(`UnitOfWork.of(session).on_commit(...)`); the boundary that opened the unit of work (an RPC,
a task, an event consumer) runs them once the outcome is known.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.logging import get_logger
from wee5_kit.tracing import TRACING, span

log = get_logger("wee5.kit.uow")

Hook = Callable[[], Awaitable[object] | object]
_KEY = "wee5_unit_of_work"


class UnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._on_commit: list[Hook] = []
        self._on_rollback: list[Hook] = []
        session.info[_KEY] = self

    @staticmethod
    def of(session: AsyncSession) -> UnitOfWork:
        """The unit of work `session` belongs to; a session opened any other way has none,
        which is a programming error: its hooks would silently never run."""
        uow = session.info.get(_KEY)
        if not isinstance(uow, UnitOfWork):
            raise RuntimeError("this session was not opened by wee5_kit.uow.unit_of_work()")
        return uow

    def on_commit(self, hook: Hook) -> None:
        """Runs `hook` after the transaction commits (never if it rolls back)."""
        self._on_commit.append(hook)

    def on_rollback(self, hook: Hook) -> None:
        """Runs `hook` after the transaction rolls back or fails to commit."""
        self._on_rollback.append(hook)

    async def _run(self, hooks: list[Hook], outcome: str) -> None:
        # The transaction's outcome is final: a failing hook is logged and the rest still run.
        for hook in hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("unit of work hook failed", outcome=outcome)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[UnitOfWork]:
    """Begins a transaction; commits when the block ends, rolls back if it raises, then runs
    the matching hooks. The block must not commit or roll back itself."""
    session = sessionmaker()
    uow = UnitOfWork(session)
    try:
        try:
            with span("transaction") if TRACING.on else nullcontext():
                async with session.begin():
                    yield uow
        except BaseException:
            await uow._run(uow._on_rollback, "rollback")
            raise
    finally:
        await session.close()
    await uow._run(uow._on_commit, "commit")
