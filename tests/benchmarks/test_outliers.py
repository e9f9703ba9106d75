"""Outliers over real gRPC: flagged on submit against the current distribution, held out of
results until an admin approves them, and never counted once rejected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from tests.benchmarks.conftest import field_violations, pay, results, submit
from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_kit.communities import COMMUNITY_ID_RULE
from wee5_kit.pagination import encode_page_token

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

TYPICAL = [
    48_000,
    49_000,
    50_000,
    50_500,
    51_000,
    52_000,
    49_500,
    50_200,
    51_500,
    48_500,
    50_800,
    49_800,
]


async def seed_typical(stub: Stub, community: str) -> None:
    for index, salary in enumerate(TYPICAL):
        reply = await submit(stub, community, f"u{index}", pay(salary))
        assert reply.submission.status == benchmarks_pb2.SUBMISSION_STATUS_ACCEPTED


async def review(
    stub: Stub,
    community: str,
    submission_id: str,
    decision: benchmarks_pb2.ReviewDecision.ValueType,
) -> benchmarks_pb2.Submission:
    reply = await stub.ReviewSubmission(
        benchmarks_pb2.ReviewSubmissionRequest(
            community_id=community,
            submission_id=submission_id,
            decision=decision,
            reason="checked with the member",
            reviewer_user_id="admin-1",
        )
    )
    return reply.submission


async def test_no_flags_while_the_sample_is_small(benchmarks: Stub, community: str) -> None:
    for index in range(9):
        await submit(benchmarks, community, f"u{index}", pay(50_000))
    reply = await submit(benchmarks, community, "big", pay(900_000))
    assert reply.submission.status == benchmarks_pb2.SUBMISSION_STATUS_ACCEPTED
    assert not reply.submission.flagged


async def test_outlier_is_held_for_review_and_approval_counts_it(
    benchmarks: Stub, community: str
) -> None:
    await seed_typical(benchmarks, community)
    before = (await results(benchmarks, community)).cells[0]
    flagged = (await submit(benchmarks, community, "big", pay(900_000))).submission
    assert flagged.flagged
    assert flagged.status == benchmarks_pb2.SUBMISSION_STATUS_PENDING_REVIEW
    [flag] = flagged.outliers
    assert flag.field == "base_salary"
    assert flag.value == 900_000
    assert flag.z_score > 3
    assert flag.modified_z_score > 3.5
    assert flag.sample_size == 12

    held = (await results(benchmarks, community)).cells[0]
    assert (held.count, held.mean) == (before.count, before.mean)
    queue = await benchmarks.ListReviewQueue(
        benchmarks_pb2.ListReviewQueueRequest(community_id=community)
    )
    assert [s.id for s in queue.submissions] == [flagged.id]

    approved = await review(
        benchmarks, community, flagged.id, benchmarks_pb2.REVIEW_DECISION_APPROVE
    )
    assert approved.status == benchmarks_pb2.SUBMISSION_STATUS_ACCEPTED
    assert approved.review_reason == "checked with the member"
    after = (await results(benchmarks, community)).cells[0]
    assert after.count == before.count + 1
    assert after.mean > before.mean
    queue = await benchmarks.ListReviewQueue(
        benchmarks_pb2.ListReviewQueueRequest(community_id=community)
    )
    assert list(queue.submissions) == []


async def test_rejected_outlier_never_counts_and_cannot_be_reviewed_twice(
    benchmarks: Stub, community: str
) -> None:
    await seed_typical(benchmarks, community)
    flagged = (await submit(benchmarks, community, "tiny", pay(100))).submission
    assert flagged.status == benchmarks_pb2.SUBMISSION_STATUS_PENDING_REVIEW
    rejected = await review(
        benchmarks, community, flagged.id, benchmarks_pb2.REVIEW_DECISION_REJECT
    )
    assert rejected.status == benchmarks_pb2.SUBMISSION_STATUS_REJECTED
    cell = (await results(benchmarks, community)).cells[0]
    assert cell.count == len(TYPICAL)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await review(benchmarks, community, flagged.id, benchmarks_pb2.REVIEW_DECISION_APPROVE)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_robust_check_flags_what_three_sigma_misses(benchmarks: Stub, community: str) -> None:
    """One approved extreme inflates the standard deviation; the median and MAD are not moved."""
    await seed_typical(benchmarks, community)
    extreme = (await submit(benchmarks, community, "big", pay(1_000_000))).submission
    await review(benchmarks, community, extreme.id, benchmarks_pb2.REVIEW_DECISION_APPROVE)
    flagged = (await submit(benchmarks, community, "odd", pay(200_000))).submission
    [flag] = flagged.outliers
    assert abs(flag.z_score) < 3 < 3.5 < flag.modified_z_score
    assert flagged.status == benchmarks_pb2.SUBMISSION_STATUS_PENDING_REVIEW


async def test_editing_an_approved_answer_checks_it_again(benchmarks: Stub, community: str) -> None:
    await seed_typical(benchmarks, community)
    typical = (await submit(benchmarks, community, "m", pay(50_000))).submission
    assert not typical.flagged
    changed = (await submit(benchmarks, community, "m", pay(950_000))).submission
    assert changed.status == benchmarks_pb2.SUBMISSION_STATUS_PENDING_REVIEW
    # Their earlier (accepted) answer no longer counts either: only the current one does.
    assert (await results(benchmarks, community)).cells[0].count == len(TYPICAL)


async def test_review_needs_a_reason_and_a_known_submission(
    benchmarks: Stub, community: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await benchmarks.ReviewSubmission(
            benchmarks_pb2.ReviewSubmissionRequest(
                community_id=community,
                submission_id="00000000-0000-0000-0000-000000000000",
                decision=benchmarks_pb2.REVIEW_DECISION_REJECT,
                reason="  ",
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await review(
            benchmarks,
            community,
            "00000000-0000-0000-0000-000000000000",
            benchmarks_pb2.REVIEW_DECISION_REJECT,
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_review_queue_pages_oldest_first(benchmarks: Stub, community: str) -> None:
    await seed_typical(benchmarks, community)
    flagged = [
        (await submit(benchmarks, community, f"odd{n}", pay(800_000 + n))).submission.id
        for n in range(3)
    ]
    first = await benchmarks.ListReviewQueue(
        benchmarks_pb2.ListReviewQueueRequest(community_id=community, page_size=2)
    )
    second = await benchmarks.ListReviewQueue(
        benchmarks_pb2.ListReviewQueueRequest(
            community_id=community, page_size=2, page_token=first.next_page_token
        )
    )
    assert [s.id for s in first.submissions] + [s.id for s in second.submissions] == flagged
    assert second.next_page_token == ""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await benchmarks.ListReviewQueue(
            benchmarks_pb2.ListReviewQueueRequest(community_id=community, page_token="nonsense!")
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "token",
    [
        encode_page_token("2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000001"),
        encode_page_token("2026-01-01T00:00:00+00:00", "not-a-uuid"),
        encode_page_token("yesterday", "00000000-0000-0000-0000-000000000001"),
        encode_page_token("00000000-0000-0000-0000-000000000001"),
    ],
)
async def test_review_queue_refuses_a_forged_page_token_naming_the_field(
    benchmarks: Stub, community: str, token: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await benchmarks.ListReviewQueue(
            benchmarks_pb2.ListReviewQueueRequest(community_id=community, page_token=token)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(raised.value)) == {"page_token"}


@pytest.mark.parametrize("community_id", ["", "has:colon", "x" * 65])
async def test_an_invalid_community_id_is_a_field_violation_with_the_one_rule(
    benchmarks: Stub, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await benchmarks.ListReviewQueue(
            benchmarks_pb2.ListReviewQueueRequest(community_id=community_id)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"community_id": COMMUNITY_ID_RULE}
