"""protobuf <-> the benchmarks context's bodies: categories and their field schemas,
submissions, aggregated results, the review queue and the community's settings."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_gateway.api.benchmarks.schemas import (
    BenchmarkSettings,
    CategoryList,
    CategoryName,
    CategoryView,
    FieldOption,
    FieldView,
    OutlierView,
    ResultCell,
    Results,
    ReviewedSubmission,
    ReviewItem,
    ReviewPage,
    RevisionView,
)
from wee5_gateway.core.problems import ProblemError, reply_name
from wee5_kit.proto import EnumCodec, from_timestamp, timestamp_field

CATEGORIES = EnumCodec(benchmarks_pb2.Category)
FIELD_TYPES = EnumCodec(benchmarks_pb2.FieldType)
SUBMISSION_STATUSES = EnumCodec(benchmarks_pb2.SubmissionStatus)
CONFIDENCE = EnumCodec(benchmarks_pb2.Confidence)
REVIEW_DECISIONS = EnumCodec(benchmarks_pb2.ReviewDecision)


class InvalidFilter(ProblemError):
    status = 400
    slug = "invalid-filter"
    title = "Invalid filter"


def category_value(category: CategoryName | None) -> benchmarks_pb2.Category.ValueType:
    """The enum of a category the API accepted; no category is the unspecified value (all)."""
    return CATEGORIES.value(category) if category else benchmarks_pb2.CATEGORY_UNSPECIFIED


def _category_name(value: benchmarks_pb2.Category.ValueType) -> CategoryName:
    return reply_name(CATEGORIES, value)  # type: ignore[return-value]


def _status_name(value: benchmarks_pb2.SubmissionStatus.ValueType) -> str:
    return SUBMISSION_STATUSES.name_or_none(value) or "unknown"


def _answers(struct: struct_pb2.Struct) -> dict[str, Any]:
    answers: dict[str, Any] = json_format.MessageToDict(struct)
    return answers


def answers_struct(answers: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    try:
        struct.update(answers)
    except (OverflowError, ValueError):
        raise ProblemError("answers hold a number too large to be one") from None
    return struct


def submission_fields(
    submission: benchmarks_pb2.Submission, *, with_history: bool = False
) -> dict[str, Any]:
    """The fields shared by `SubmissionView` and `SubmissionSaved`."""
    return {
        "id": submission.id,
        "category": _category_name(submission.category),
        "schema_version": submission.schema_version,
        "version": submission.version,
        "answers": _answers(submission.answers),
        "status": _status_name(submission.status),
        "flagged": submission.flagged,
        "created_at": from_timestamp(submission.created_at),
        "updated_at": from_timestamp(submission.updated_at),
        "history": [
            RevisionView(
                version=revision.version,
                schema_version=revision.schema_version,
                answers=_answers(revision.answers),
                status=_status_name(revision.status),
                submitted_at=from_timestamp(revision.submitted_at),
                replaced_at=from_timestamp(revision.replaced_at),
            )
            for revision in submission.history
        ]
        if with_history
        else None,
    }


def _field(spec: benchmarks_pb2.FieldSchema) -> FieldView:
    number = spec.type == benchmarks_pb2.FIELD_TYPE_NUMBER
    return FieldView(
        name=spec.name,
        label=spec.label,
        type=reply_name(FIELD_TYPES, spec.type),
        description=spec.description,
        required=spec.required,
        groupable=spec.groupable,
        unit=spec.unit if number else None,
        min=spec.min if spec.HasField("min") else None,
        max=spec.max if spec.HasField("max") else None,
        integer=spec.integer,
        options=None
        if number
        else [FieldOption(value=o.value, label=o.label) for o in spec.options],
    )


def category_list(reply: benchmarks_pb2.ListCategoriesResponse) -> CategoryList:
    return CategoryList(
        categories=[
            CategoryView(
                category=_category_name(schema.category),
                label=schema.label,
                description=schema.description,
                version=schema.version,
                fields=[_field(spec) for spec in schema.fields],
            )
            for schema in reply.categories
        ]
    )


def _cell(cell: benchmarks_pb2.ResultCell) -> ResultCell:
    numeric = cell.field_type == benchmarks_pb2.FIELD_TYPE_NUMBER
    group = cell.group or None
    if cell.below_floor:
        return ResultCell(field=cell.field, group=group, below_floor=True, unit=cell.unit or None)
    return ResultCell(
        field=cell.field,
        group=group,
        below_floor=False,
        unit=cell.unit or None,
        count=cell.count,
        confidence=CONFIDENCE.name_or_none(cell.confidence),
        mean=cell.mean if numeric else None,
        median=cell.median if numeric else None,
        p10=cell.p10 if numeric else None,
        p25=cell.p25 if numeric else None,
        p75=cell.p75 if numeric else None,
        p90=cell.p90 if numeric else None,
        min=cell.min if cell.HasField("min") else None,
        max=cell.max if cell.HasField("max") else None,
        caller_percentile=cell.caller_percentile if cell.HasField("caller_percentile") else None,
        option_counts=None if numeric else dict(cell.option_counts),
    )


def results_view(category: CategoryName, reply: benchmarks_pb2.GetResultsResponse) -> Results:
    return Results(
        category=category,
        schema_version=reply.schema_version,
        anonymity_floor=reply.anonymity_floor,
        below_floor=reply.below_floor,
        total_count=None if reply.below_floor else reply.total_count,
        cells=[_cell(cell) for cell in reply.cells],
    )


def result_filters(raw: list[str] | None) -> dict[str, str]:
    """`<field>:<value>` query parameters as the request's filter map, each field once."""
    filters: dict[str, str] = {}
    for item in raw or []:
        name, sep, value = item.partition(":")
        if not sep or not name or not value:
            raise InvalidFilter(f"filter {item!r} is not `<field>:<value>`")
        if name in filters:
            raise InvalidFilter(f"field {name} is filtered more than once")
        filters[name] = value
    return filters


def review_page(reply: benchmarks_pb2.ListReviewQueueResponse) -> ReviewPage:
    return ReviewPage(
        items=[
            ReviewItem(
                id=s.id,
                category=_category_name(s.category),
                schema_version=s.schema_version,
                version=s.version,
                answers=_answers(s.answers),
                outliers=[
                    OutlierView(
                        field=o.field,
                        value=o.value,
                        z_score=o.z_score,
                        modified_z_score=o.modified_z_score,
                        sample_size=o.sample_size,
                    )
                    for o in s.outliers
                ],
                submitted_at=from_timestamp(s.updated_at),
            )
            for s in reply.submissions
        ],
        next_cursor=reply.next_page_token or None,
    )


def reviewed_submission(submission: benchmarks_pb2.Submission) -> ReviewedSubmission:
    return ReviewedSubmission(
        id=submission.id,
        category=_category_name(submission.category),
        status=_status_name(submission.status),
        review_reason=submission.review_reason,
        reviewed_at=timestamp_field(submission, "reviewed_at"),
    )


def settings_view(settings: benchmarks_pb2.CommunitySettings) -> BenchmarkSettings:
    return BenchmarkSettings(
        community_id=settings.community_id,
        enabled=settings.enabled,
        updated_at=timestamp_field(settings, "updated_at"),
    )
