"""BenchmarksService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here.

Invalid requests answer INVALID_ARGUMENT with a `google.rpc.BadRequest` in the status details
(one field violation per field at fault), which the gateway turns into a 422 listing them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, json_format, struct_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5_benchmarks.categories import SCHEMAS, Category, CategorySchema, FieldType
from wee5_benchmarks.errors import InvalidBenchmarkRequest
from wee5_benchmarks.models import CommunitySettings, Submission, SubmissionRevision
from wee5_benchmarks.service import BenchmarksService, ResultsRequest
from wee5_benchmarks.statistics import Cell
from wee5_kit.logging import bound_contextvars

Context = grpc.aio.ServicerContext[Any, Any]
Request = TypeVar("Request")
Response = TypeVar("Response")

_CATEGORIES = {
    benchmarks_pb2.CATEGORY_COMPENSATION: Category.COMPENSATION,
    benchmarks_pb2.CATEGORY_INFRASTRUCTURE: Category.INFRASTRUCTURE,
    benchmarks_pb2.CATEGORY_BUSINESS: Category.BUSINESS,
    benchmarks_pb2.CATEGORY_OPERATIONAL: Category.OPERATIONAL,
}
_CATEGORY_PROTO = {category: value for value, category in _CATEGORIES.items()}
_FIELD_TYPES = {
    FieldType.NUMBER: benchmarks_pb2.FIELD_TYPE_NUMBER,
    FieldType.ENUM: benchmarks_pb2.FIELD_TYPE_ENUM,
    FieldType.MULTI_ENUM: benchmarks_pb2.FIELD_TYPE_MULTI_ENUM,
}
_STATUSES = {
    "accepted": benchmarks_pb2.SUBMISSION_STATUS_ACCEPTED,
    "pending_review": benchmarks_pb2.SUBMISSION_STATUS_PENDING_REVIEW,
    "rejected": benchmarks_pb2.SUBMISSION_STATUS_REJECTED,
}
_CONFIDENCE = {
    "low": benchmarks_pb2.CONFIDENCE_LOW,
    "medium": benchmarks_pb2.CONFIDENCE_MEDIUM,
    "high": benchmarks_pb2.CONFIDENCE_HIGH,
}


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


def _category(value: int, *, required: bool = True) -> Category | None:
    category: Category | None = _CATEGORIES.get(value)  # type: ignore[call-overload]
    if category is None and required:
        raise InvalidBenchmarkRequest.of("category", "must be one of the four categories")
    return category


def _timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _struct(values: dict[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values or {})
    return struct


def schema_proto(schema: CategorySchema) -> benchmarks_pb2.CategorySchema:
    return benchmarks_pb2.CategorySchema(
        category=_CATEGORY_PROTO[schema.category],
        label=schema.label,
        description=schema.description,
        version=schema.version,
        fields=[
            benchmarks_pb2.FieldSchema(
                name=spec.name,
                label=spec.label,
                type=_FIELD_TYPES[spec.type],
                unit=spec.unit,
                min=spec.minimum,
                max=spec.maximum,
                options=[
                    benchmarks_pb2.FieldOption(value=o.value, label=o.label) for o in spec.options
                ],
                required=spec.required,
                groupable=spec.groupable,
                integer=spec.integer,
                description=spec.description,
            )
            for spec in schema.fields
        ],
    )


def submission_proto(
    submission: Submission, history: list[SubmissionRevision] | None = None
) -> benchmarks_pb2.Submission:
    return benchmarks_pb2.Submission(
        id=str(submission.id),
        community_id=submission.community_id,
        category=_CATEGORY_PROTO[Category(submission.category)],
        schema_version=submission.schema_version,
        answers=_struct(submission.answers),
        version=submission.version,
        flagged=submission.flagged,
        status=_STATUSES.get(submission.status, benchmarks_pb2.SUBMISSION_STATUS_UNSPECIFIED),
        created_at=_timestamp(submission.created_at),
        updated_at=_timestamp(submission.updated_at),
        history=[
            benchmarks_pb2.SubmissionRevision(
                version=revision.version,
                schema_version=revision.schema_version,
                answers=_struct(revision.answers),
                status=_STATUSES.get(revision.status, benchmarks_pb2.SUBMISSION_STATUS_UNSPECIFIED),
                submitted_at=_timestamp(revision.submitted_at),
                replaced_at=_timestamp(revision.replaced_at),
            )
            for revision in history or []
        ],
        outliers=[benchmarks_pb2.OutlierFlag(**flag) for flag in submission.outliers],
        review_reason=submission.review_reason or "",
        reviewed_at=_timestamp(submission.reviewed_at),
    )


def _settings_proto(settings: CommunitySettings) -> benchmarks_pb2.CommunitySettings:
    return benchmarks_pb2.CommunitySettings(
        community_id=settings.community_id,
        enabled=settings.enabled,
        updated_at=_timestamp(settings.updated_at),
        updated_by=settings.updated_by or "",
    )


def _cell_proto(cell: Cell) -> benchmarks_pb2.ResultCell:
    proto = benchmarks_pb2.ResultCell(
        field=cell.field.name,
        field_type=_FIELD_TYPES[cell.field.type],
        group=cell.group,
        unit=cell.field.unit,
        below_floor=cell.below_floor,
    )
    if cell.below_floor:
        return proto
    p10, p25, median, p75, p90 = cell.quantiles
    proto.count = cell.count
    proto.confidence = _CONFIDENCE[cell.confidence]
    proto.option_counts.update(cell.option_counts)
    if cell.field.type is FieldType.NUMBER:
        proto.mean, proto.median = cell.mean, median
        proto.p10, proto.p25, proto.p75, proto.p90 = p10, p25, p75, p90
    if cell.minimum is not None and cell.maximum is not None:
        proto.min, proto.max = cell.minimum, cell.maximum
    if cell.caller_percentile is not None:
        proto.caller_percentile = cell.caller_percentile
    return proto


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

    @with_field_errors
    async def SubmitBenchmark(
        self, request: benchmarks_pb2.SubmitBenchmarkRequest, context: Context
    ) -> benchmarks_pb2.SubmitBenchmarkResponse:
        category = _category(request.category)
        assert category is not None
        answers = json_format.MessageToDict(request.answers)
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                result = await self.service.submit(
                    session,
                    community_id=request.community_id,
                    user_id=request.user_id,
                    category=category,
                    version=request.schema_version,
                    answers=answers,
                )
        return benchmarks_pb2.SubmitBenchmarkResponse(
            submission=submission_proto(result.submission),
            first_submission=result.first_submission,
        )

    @with_field_errors
    async def ListMySubmissions(
        self, request: benchmarks_pb2.ListMySubmissionsRequest, context: Context
    ) -> benchmarks_pb2.ListMySubmissionsResponse:
        category = _category(request.category, required=False)
        async with self.sessionmaker() as session:
            submissions, history = await self.service.mine(
                session, request.community_id, request.user_id, category, request.include_history
            )
        return benchmarks_pb2.ListMySubmissionsResponse(
            submissions=[submission_proto(s, history.get(s.id)) for s in submissions]
        )

    @with_field_errors
    async def DeleteSubmission(
        self, request: benchmarks_pb2.DeleteSubmissionRequest, context: Context
    ) -> benchmarks_pb2.DeleteSubmissionResponse:
        async with self.sessionmaker.begin() as session:
            await self.service.delete(
                session, request.community_id, request.user_id, request.submission_id
            )
        return benchmarks_pb2.DeleteSubmissionResponse()

    @with_field_errors
    async def GetResults(
        self, request: benchmarks_pb2.GetResultsRequest, context: Context
    ) -> benchmarks_pb2.GetResultsResponse:
        category = _category(request.category)
        assert category is not None
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
                ),
            )
        return benchmarks_pb2.GetResultsResponse(
            category=request.category,
            schema_version=SCHEMAS[category][-1].version,
            cells=[_cell_proto(cell) for cell in results.cells],
            total_count=results.total_count,
            anonymity_floor=self.service.privacy.floor,
            below_floor=results.below_floor,
        )

    @with_field_errors
    async def ListReviewQueue(
        self, request: benchmarks_pb2.ListReviewQueueRequest, context: Context
    ) -> benchmarks_pb2.ListReviewQueueResponse:
        category = _category(request.category, required=False)
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
        async with self.sessionmaker.begin() as session:
            submission = await self.service.review(
                session,
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
        return benchmarks_pb2.GetCommunitySettingsResponse(settings=_settings_proto(settings))

    @with_field_errors
    async def UpdateCommunitySettings(
        self, request: benchmarks_pb2.UpdateCommunitySettingsRequest, context: Context
    ) -> benchmarks_pb2.UpdateCommunitySettingsResponse:
        async with self.sessionmaker.begin() as session:
            settings, previous = await self.service.update_settings(
                session, request.community_id, request.enabled, request.updated_by
            )
        return benchmarks_pb2.UpdateCommunitySettingsResponse(
            settings=_settings_proto(settings), previous_enabled=previous
        )
