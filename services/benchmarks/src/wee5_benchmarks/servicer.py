"""BenchmarksService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here.

Invalid requests answer INVALID_ARGUMENT with a `google.rpc.BadRequest` in the status details
(one field violation per field at fault), which the gateway turns into a 422 listing them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5_benchmarks.categories import SCHEMAS
from wee5_benchmarks.errors import InvalidBenchmarkRequest
from wee5_benchmarks.mappers import (
    category_from_proto,
    cell_proto,
    required_category,
    schema_proto,
    settings_proto,
    submission_proto,
)
from wee5_benchmarks.repository import daily_participation
from wee5_benchmarks.service import BenchmarksService, ResultsRequest
from wee5_kit.communities import communities_window
from wee5_kit.logging import bound_contextvars
from wee5_kit.uow import unit_of_work

Context = grpc.aio.ServicerContext[Any, Any]
Request = TypeVar("Request")
Response = TypeVar("Response")


def with_field_errors(
    method: Callable[[Any, Request, Context], Awaitable[Response]],
) -> Callable[[Any, Request, Context], Awaitable[Response]]:
    """Answers InvalidBenchmarkRequest as INVALID_ARGUMENT carrying its field violations."""

    @functools.wraps(method)
    async def call(self: Any, request: Request, context: Context) -> Response:
        try:
            return await method(self, request, context)
        except InvalidBenchmarkRequest as error:
            details = any_pb2.Any()
            details.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.message
                        )
                        for v in error.violations
                    ]
                )
            )
            status = status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message=error.message, details=[details]
            )
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                error.message,
                trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
            )
            raise  # unreachable: abort raises

    return call


class BenchmarksServicer(benchmarks_pb2_grpc.BenchmarksServiceServicer):
    def __init__(
        self, service: BenchmarksService, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker

    async def ListCategories(
        self, request: benchmarks_pb2.ListCategoriesRequest, context: Context
    ) -> benchmarks_pb2.ListCategoriesResponse:
        return benchmarks_pb2.ListCategoriesResponse(
            categories=[schema_proto(versions[-1]) for versions in SCHEMAS.values()]
        )

    async def GetParticipation(
        self, request: benchmarks_pb2.GetParticipationRequest, context: Context
    ) -> benchmarks_pb2.GetParticipationResponse:
        since, until = communities_window(request)
        async with self.sessionmaker() as session:
            days = await daily_participation(session, request.community_ids, since, until)
        return benchmarks_pb2.GetParticipationResponse(
            days=[
                benchmarks_pb2.DailyParticipation(
                    community_id=d.community_id,
                    day=d.day.date().isoformat(),
                    submissions=d.submissions,
                    members=d.members,
                )
                for d in days
            ]
        )

    @with_field_errors
    async def SubmitBenchmark(
        self, request: benchmarks_pb2.SubmitBenchmarkRequest, context: Context
    ) -> benchmarks_pb2.SubmitBenchmarkResponse:
        category = required_category(request.category)
        answers = json_format.MessageToDict(request.answers)
        with bound_contextvars(community_id=request.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                result = await self.service.submit(
                    uow.session,
                    community_id=request.community_id,
                    user_id=request.user_id,
                    category=category,
                    version=request.schema_version,
                    answers=answers,
                    owner=request.owner,
                )
        return benchmarks_pb2.SubmitBenchmarkResponse(
            submission=submission_proto(result.submission),
            first_submission=result.first_submission,
        )

    @with_field_errors
    async def ListMySubmissions(
        self, request: benchmarks_pb2.ListMySubmissionsRequest, context: Context
    ) -> benchmarks_pb2.ListMySubmissionsResponse:
        category = category_from_proto(request.category)
        async with self.sessionmaker() as session:
            submissions, history = await self.service.mine(
                session,
                request.community_id,
                request.user_id,
                category,
                request.include_history,
                owner=request.owner,
            )
        return benchmarks_pb2.ListMySubmissionsResponse(
            submissions=[submission_proto(s, history.get(s.id)) for s in submissions]
        )

    @with_field_errors
    async def DeleteSubmission(
        self, request: benchmarks_pb2.DeleteSubmissionRequest, context: Context
    ) -> benchmarks_pb2.DeleteSubmissionResponse:
        async with unit_of_work(self.sessionmaker) as uow:
            await self.service.delete(
                uow.session,
                request.community_id,
                request.user_id,
                request.submission_id,
                owner=request.owner,
            )
        return benchmarks_pb2.DeleteSubmissionResponse()

    @with_field_errors
    async def GetResults(
        self, request: benchmarks_pb2.GetResultsRequest, context: Context
    ) -> benchmarks_pb2.GetResultsResponse:
        category = required_category(request.category)
        async with self.sessionmaker() as session:
            results = await self.service.results(
                session,
                ResultsRequest(
                    community_id=request.community_id,
                    category=category,
                    field=request.field,
                    group_by=request.group_by,
                    filters=dict(request.filters),
                    user_id=request.user_id,
                    owner=request.owner,
                ),
            )
        return benchmarks_pb2.GetResultsResponse(
            category=request.category,
            schema_version=SCHEMAS[category][-1].version,
            cells=[cell_proto(cell) for cell in results.cells],
            total_count=results.total_count,
            anonymity_floor=self.service.privacy.floor,
            below_floor=results.below_floor,
        )

    @with_field_errors
    async def ListReviewQueue(
        self, request: benchmarks_pb2.ListReviewQueueRequest, context: Context
    ) -> benchmarks_pb2.ListReviewQueueResponse:
        category = category_from_proto(request.category)
        async with self.sessionmaker() as session:
            page = await self.service.review_queue(
                session, request.community_id, category, request.page_size, request.page_token
            )
        return benchmarks_pb2.ListReviewQueueResponse(
            submissions=[submission_proto(s) for s in page.submissions],
            next_page_token=page.next_token,
        )

    @with_field_errors
    async def ReviewSubmission(
        self, request: benchmarks_pb2.ReviewSubmissionRequest, context: Context
    ) -> benchmarks_pb2.ReviewSubmissionResponse:
        if request.decision not in (
            benchmarks_pb2.REVIEW_DECISION_APPROVE,
            benchmarks_pb2.REVIEW_DECISION_REJECT,
        ):
            raise InvalidBenchmarkRequest.of("decision", "must be approve or reject")
        async with unit_of_work(self.sessionmaker) as uow:
            submission = await self.service.review(
                uow.session,
                community_id=request.community_id,
                submission_id=request.submission_id,
                approve=request.decision == benchmarks_pb2.REVIEW_DECISION_APPROVE,
                reason=request.reason,
                reviewer=request.reviewer_user_id,
            )
        return benchmarks_pb2.ReviewSubmissionResponse(submission=submission_proto(submission))

    @with_field_errors
    async def GetCommunitySettings(
        self, request: benchmarks_pb2.GetCommunitySettingsRequest, context: Context
    ) -> benchmarks_pb2.GetCommunitySettingsResponse:
        async with self.sessionmaker() as session:
            settings = await self.service.community_settings(session, request.community_id)
        return benchmarks_pb2.GetCommunitySettingsResponse(settings=settings_proto(settings))

    @with_field_errors
    async def UpdateCommunitySettings(
        self, request: benchmarks_pb2.UpdateCommunitySettingsRequest, context: Context
    ) -> benchmarks_pb2.UpdateCommunitySettingsResponse:
        async with unit_of_work(self.sessionmaker) as uow:
            settings, previous = await self.service.update_settings(
                uow.session, request.community_id, request.enabled, request.updated_by
            )
        return benchmarks_pb2.UpdateCommunitySettingsResponse(
            settings=settings_proto(settings), previous_enabled=previous
        )
