"""The group-commit writer logs with the ids of the calls in the batch it commits, never with
the request id of the call that happened to start it (issue: xp logged an unrelated earlier
request's ids)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from structlog.contextvars import get_contextvars

from wee5_kit.grpc import request_id_var
from wee5_kit.logging import bound_contextvars
from wee5_xp.awards import ActivityInput, ActivityResult
from wee5_xp.batching import ActivityBatcher
from wee5_xp.service import XpService


class ContextSeen:
    """Stands in for XpService's two calls the writer makes, noting the log context of each
    commit (the database part is covered by tests/xp/test_record_batch.py)."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield None

    async def record_activities(
        self,
        session: None,
        activities: Sequence[ActivityInput],
        on_locked: Callable[[], None] | None = None,
    ) -> list[ActivityResult]:
        self.contexts.append(dict(get_contextvars()))
        return [ActivityResult("awarded") for _ in activities]


def message(community_id: str, key: str) -> ActivityInput:
    return ActivityInput(community_id, "user_1", "message", "whop", key, content_length=10)


async def call(batcher: ActivityBatcher, request_id: str, community_id: str) -> None:
    token = request_id_var.set(request_id)
    try:
        with bound_contextvars(request_id=request_id, community_id=community_id):
            await batcher.record(message(community_id, f"key-{request_id}"))
    finally:
        request_id_var.reset(token)


async def test_each_commit_logs_with_its_own_calls_ids_not_those_of_the_first_caller() -> None:
    seen = ContextSeen()
    batcher = ActivityBatcher(cast(XpService, seen), window=0, writers=1)
    try:
        await call(batcher, "req-first", "exp_first")  # starts the writer
        await call(batcher, "req-second", "exp_second")
    finally:
        await batcher.close()

    assert seen.contexts == [
        {"request_ids": ["req-first"], "community_ids": ["exp_first"]},
        {"request_ids": ["req-second"], "community_ids": ["exp_second"]},
    ]
