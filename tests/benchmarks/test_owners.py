"""A submission belongs to who wrote it (its owner), not to whoever is linked to its member id
later: over gRPC against the real benchmarks server and Postgres."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.benchmarks.conftest import COMPENSATION, pay, struct
from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_benchmarks.models import Submission

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

Sessions = async_sessionmaker[AsyncSession]


async def submit_as(
    stub: Stub, community_id: str, user_id: str, owner: str, salary: float
) -> benchmarks_pb2.SubmitBenchmarkResponse:
    return await stub.SubmitBenchmark(
        benchmarks_pb2.SubmitBenchmarkRequest(
            community_id=community_id,
            user_id=user_id,
            category=COMPENSATION,
            answers=struct(pay(salary)),
            owner=owner,
        )
    )


async def mine(
    stub: Stub, community_id: str, user_id: str, owner: str
) -> list[benchmarks_pb2.Submission]:
    reply = await stub.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(
            community_id=community_id, user_id=user_id, owner=owner, include_history=True
        )
    )
    return list(reply.submissions)


async def test_another_owner_of_the_same_member_id_reads_and_changes_nothing(
    benchmarks: Stub, community: str
) -> None:
    await submit_as(benchmarks, community, "user_v", "account:victim", 123_456)
    await submit_as(benchmarks, community, "user_v", "account:victim", 123_457)

    seen = await mine(benchmarks, community, "user_v", "account:puppet")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit_as(benchmarks, community, "user_v", "account:puppet", 1)
    submission = (await mine(benchmarks, community, "user_v", "account:victim"))[0]
    with pytest.raises(grpc.aio.AioRpcError) as not_deleted:
        await benchmarks.DeleteSubmission(
            benchmarks_pb2.DeleteSubmissionRequest(
                community_id=community,
                user_id="user_v",
                submission_id=submission.id,
                owner="account:puppet",
            )
        )

    assert seen == []
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not_deleted.value.code() == grpc.StatusCode.NOT_FOUND
    kept = await mine(benchmarks, community, "user_v", "account:victim")
    assert [s.answers["base_salary"] for s in kept] == [123_457]
    assert [r.answers["base_salary"] for r in kept[0].history] == [123_456]


async def test_an_unattributed_submission_is_claimed_without_its_history(
    benchmarks: Stub, community: str, sessionmaker: Sessions
) -> None:
    await submit_as(benchmarks, community, "dc_1", "account:first", 111_111)
    await submit_as(benchmarks, community, "dc_1", "account:first", 111_112)
    async with sessionmaker.begin() as session:  # written before owners were kept
        await session.execute(
            update(Submission).where(Submission.community_id == community).values(owner=None)
        )

    assert await mine(benchmarks, community, "dc_1", "account:first") == []
    await submit_as(benchmarks, community, "dc_1", "account:claimant", 5)

    claimed = await mine(benchmarks, community, "dc_1", "account:claimant")
    assert [s.answers["base_salary"] for s in claimed] == [5]
    assert list(claimed[0].history) == []
