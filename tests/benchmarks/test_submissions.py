"""Submissions over real gRPC: schemas and their field errors, upsert with history, deletion,
the per-community switch, and `benchmarks.submitted` published once per member and category."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import grpc
import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.benchmarks.conftest import (
    COMPENSATION,
    OPERATIONAL,
    field_violations,
    pay,
    submit,
)
from wee5.benchmarks.v1 import benchmarks_pb2
from wee5.events.v1 import events_pb2
from wee5_benchmarks.models import SubmissionRevision, outbox
from wee5_kit.events import EventBus

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

Sessions = async_sessionmaker[AsyncSession]


async def test_categories_have_versioned_schemas_with_units_bounds_and_closed_options(
    benchmarks: Stub,
) -> None:
    reply = await benchmarks.ListCategories(benchmarks_pb2.ListCategoriesRequest())
    by_category = {c.category: c for c in reply.categories}
    assert set(by_category) == {
        benchmarks_pb2.CATEGORY_COMPENSATION,
        benchmarks_pb2.CATEGORY_INFRASTRUCTURE,
        benchmarks_pb2.CATEGORY_BUSINESS,
        benchmarks_pb2.CATEGORY_OPERATIONAL,
    }
    compensation = {f.name: f for f in by_category[COMPENSATION].fields}
    assert by_category[COMPENSATION].version == 1
    salary = compensation["base_salary"]
    assert (salary.type, salary.unit, salary.min, salary.max, salary.required) == (
        benchmarks_pb2.FIELD_TYPE_NUMBER,
        "USD/year",
        0,
        1_000_000,
        True,
    )
    role = compensation["role"]
    assert role.type == benchmarks_pb2.FIELD_TYPE_ENUM
    assert role.groupable
    assert "sdr" in [o.value for o in role.options]
    assert {"commission_rate", "ote", "team_size", "region"} <= set(compensation)


async def test_invalid_answers_name_every_field_at_fault(benchmarks: Stub, community: str) -> None:
    answers = {
        "role": "astronaut",
        "base_salary": -5,
        "team_size": 2.5,
        "commission_rate": "lots",
        "shoe_size": 44,
    }
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await submit(benchmarks, community, "user_a", answers)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(raised.value)
    assert set(violations) == {
        "role",
        "region",
        "base_salary",
        "team_size",
        "commission_rate",
        "shoe_size",
    }
    assert "sdr" in violations["role"]
    assert violations["region"] == "is required"
    assert "at least 0" in violations["base_salary"]
    assert violations["team_size"] == "must be a whole number"


async def test_unknown_schema_version_is_a_field_error(benchmarks: Stub, community: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await benchmarks.SubmitBenchmark(
            benchmarks_pb2.SubmitBenchmarkRequest(
                community_id=community, user_id="u", category=COMPENSATION, schema_version=7
            )
        )
    assert field_violations(raised.value) == {"schema_version": "compensation has no version 7"}


async def test_second_submission_replaces_the_first_and_keeps_it_in_history(
    benchmarks: Stub, community: str
) -> None:
    first = await submit(benchmarks, community, "user_a", pay(50_000))
    second = await submit(benchmarks, community, "user_a", pay(55_000, team_size=4))
    assert first.first_submission
    assert not second.first_submission
    assert second.submission.id == first.submission.id
    assert second.submission.version == 2
    assert second.submission.answers["base_salary"] == 55_000
    mine = await benchmarks.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(
            community_id=community, user_id="user_a", include_history=True
        )
    )
    [current] = mine.submissions
    assert current.answers["team_size"] == 4
    assert [(r.version, r.answers["base_salary"]) for r in current.history] == [(1, 50_000)]


async def test_the_same_answers_again_change_nothing(benchmarks: Stub, community: str) -> None:
    await submit(benchmarks, community, "user_a", pay(50_000))
    again = await submit(benchmarks, community, "user_a", pay(50_000))
    assert again.submission.version == 1
    assert not again.first_submission


async def test_one_submission_per_member_per_category(benchmarks: Stub, community: str) -> None:
    await submit(benchmarks, community, "user_a", pay(50_000))
    await submit(
        benchmarks, community, "user_a", {"channel": "linkedin", "reply_rate": 4}, OPERATIONAL
    )
    await submit(benchmarks, community, "user_b", pay(60_000))
    mine = await benchmarks.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(community_id=community, user_id="user_a")
    )
    assert sorted(s.category for s in mine.submissions) == [COMPENSATION, OPERATIONAL]


async def test_deleting_erases_answers_and_history_and_only_the_owner_may(
    benchmarks: Stub, community: str, sessionmaker: Sessions
) -> None:
    await submit(benchmarks, community, "user_a", pay(50_000))
    saved = (await submit(benchmarks, community, "user_a", pay(51_000))).submission
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await benchmarks.DeleteSubmission(
            benchmarks_pb2.DeleteSubmissionRequest(
                community_id=community, user_id="user_b", submission_id=saved.id
            )
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    await benchmarks.DeleteSubmission(
        benchmarks_pb2.DeleteSubmissionRequest(
            community_id=community, user_id="user_a", submission_id=saved.id
        )
    )
    mine = await benchmarks.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(community_id=community, user_id="user_a")
    )
    assert list(mine.submissions) == []
    async with sessionmaker() as session:
        kept = await session.scalars(
            select(SubmissionRevision).where(
                SubmissionRevision.submission_id == uuid.UUID(saved.id)
            )
        )
        assert list(kept) == []


async def test_changes_per_day_are_limited(benchmarks: Stub, community: str) -> None:
    await submit(benchmarks, community, "user_a", pay(50_000))
    for step in range(1, 11):
        await submit(benchmarks, community, "user_a", pay(50_000 + step))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await submit(benchmarks, community, "user_a", pay(70_000))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_deleting_and_answering_again_counts_against_the_daily_changes(
    benchmarks: Stub, community: str
) -> None:
    saved = (await submit(benchmarks, community, "user_a", pay(50_000))).submission
    for step in range(1, 6):
        await benchmarks.DeleteSubmission(
            benchmarks_pb2.DeleteSubmissionRequest(
                community_id=community, user_id="user_a", submission_id=saved.id
            )
        )
        saved = (await submit(benchmarks, community, "user_a", pay(50_000 + step))).submission
    # Five deletions and five new answers: ten changes today. Deleting is never refused...
    await benchmarks.DeleteSubmission(
        benchmarks_pb2.DeleteSubmissionRequest(
            community_id=community, user_id="user_a", submission_id=saved.id
        )
    )
    # ...but answering again is, until the day is over.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await submit(benchmarks, community, "user_a", pay(60_000))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_every_community_rpc_refuses_while_benchmarks_are_off(
    benchmarks: Stub, community_id: str
) -> None:
    calls: list[Awaitable[object]] = [
        submit(benchmarks, community_id, "user_a", pay(50_000)),
        benchmarks.ListMySubmissions(
            benchmarks_pb2.ListMySubmissionsRequest(community_id=community_id, user_id="u")
        ),
        benchmarks.DeleteSubmission(
            benchmarks_pb2.DeleteSubmissionRequest(
                community_id=community_id, user_id="u", submission_id=str(uuid.uuid4())
            )
        ),
        benchmarks.GetResults(
            benchmarks_pb2.GetResultsRequest(community_id=community_id, category=COMPENSATION)
        ),
        benchmarks.ListReviewQueue(
            benchmarks_pb2.ListReviewQueueRequest(community_id=community_id)
        ),
        benchmarks.ReviewSubmission(
            benchmarks_pb2.ReviewSubmissionRequest(
                community_id=community_id,
                submission_id=str(uuid.uuid4()),
                decision=benchmarks_pb2.REVIEW_DECISION_APPROVE,
                reason="fine",
            )
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "turned off" in (raised.value.details() or "")


async def test_turning_benchmarks_off_again_refuses_submissions(
    benchmarks: Stub, community: str
) -> None:
    reply = await benchmarks.UpdateCommunitySettings(
        benchmarks_pb2.UpdateCommunitySettingsRequest(community_id=community, enabled=False)
    )
    assert reply.previous_enabled
    assert not reply.settings.enabled
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await submit(benchmarks, community, "user_a", pay(50_000))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _submitted_events(
    sessionmaker: Sessions, community_id: str
) -> list[events_pb2.BenchmarkSubmitted]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(select(outbox.c.subject, outbox.c.payload).order_by(outbox.c.id))
        ).all()
    events = [
        events_pb2.BenchmarkSubmitted.FromString(row.payload)
        for row in rows
        if row.subject == "benchmarks.submitted"
    ]
    return [event for event in events if event.meta.community_id == community_id]


async def test_first_submission_per_category_publishes_once_even_after_delete_and_resubmit(
    benchmarks: Stub, community: str, sessionmaker: Sessions, bus: EventBus
) -> None:
    first = await submit(benchmarks, community, "user_a", pay(50_000))
    await submit(benchmarks, community, "user_a", pay(52_000))
    await benchmarks.DeleteSubmission(
        benchmarks_pb2.DeleteSubmissionRequest(
            community_id=community, user_id="user_a", submission_id=first.submission.id
        )
    )
    again = await submit(benchmarks, community, "user_a", pay(53_000))
    assert not again.first_submission
    await submit(
        benchmarks, community, "user_a", {"channel": "linkedin", "reply_rate": 4}, OPERATIONAL
    )
    events = await _submitted_events(sessionmaker, community)
    assert sorted((e.user_id, e.category, e.first_in_category) for e in events) == [
        ("user_a", "compensation", True),
        ("user_a", "operational", True),
    ]
    # The relay publishes them to JetStream with the event id as Nats-Msg-Id.
    subscription = await bus.js.subscribe(
        bus.subject("benchmarks.submitted"),
        stream=bus.stream_name("benchmarks"),
        deliver_policy=DeliverPolicy.ALL,
        ordered_consumer=True,
    )
    wanted = {e.meta.event_id for e in events}
    seen: set[str] = set()
    try:
        async with asyncio.timeout(10):
            while not wanted <= seen:
                msg = await subscription.next_msg(timeout=10)
                event = events_pb2.BenchmarkSubmitted.FromString(msg.data)
                if event.meta.community_id == community:
                    assert (msg.headers or {}).get("Nats-Msg-Id") == event.meta.event_id
                    seen.add(event.meta.event_id)
    finally:
        await subscription.unsubscribe()
    assert seen == wanted


async def test_concurrent_first_submissions_of_one_member_publish_once(
    benchmarks: Stub, community: str, sessionmaker: Sessions
) -> None:
    replies = await asyncio.gather(
        *(submit(benchmarks, community, "user_a", pay(50_000 + n)) for n in range(5))
    )
    assert sum(reply.first_submission for reply in replies) == 1
    assert len(await _submitted_events(sessionmaker, community)) == 1
