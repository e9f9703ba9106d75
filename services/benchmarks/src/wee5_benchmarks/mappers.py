"""Protobuf <-> the benchmarks domain: what the servicer reads from requests and writes into
responses. Enum names come from the enums' descriptors (`wee5_kit.proto.EnumCodec`); the
proto names without their prefix are the domain's `Category` and `FieldType` values."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_benchmarks.categories import Category, CategorySchema, FieldType
from wee5_benchmarks.errors import InvalidBenchmarkRequest
from wee5_benchmarks.models import CommunitySettings, Submission, SubmissionRevision
from wee5_benchmarks.statistics import Cell
from wee5_kit.proto import EnumCodec, optional_timestamp

CATEGORIES = EnumCodec(benchmarks_pb2.Category)
FIELD_TYPES = EnumCodec(benchmarks_pb2.FieldType)
SUBMISSION_STATUSES = EnumCodec(benchmarks_pb2.SubmissionStatus)
CONFIDENCES = EnumCodec(benchmarks_pb2.Confidence)


def category_from_proto(value: int) -> Category | None:
    """The category a request names, or None when it names none."""
    if value == benchmarks_pb2.CATEGORY_UNSPECIFIED:
        return None
    name = CATEGORIES.name_or_none(value)
    if name is None:
        raise InvalidBenchmarkRequest.of("category", "must be one of the four categories")
    return Category(name)


def required_category(value: int) -> Category:
    category = category_from_proto(value)
    if category is None:
        raise InvalidBenchmarkRequest.of("category", "must be one of the four categories")
    return category


def category_to_proto(category: Category) -> benchmarks_pb2.Category.ValueType:
    return CATEGORIES.value(category.value)


def _field_type(field_type: FieldType) -> benchmarks_pb2.FieldType.ValueType:
    return FIELD_TYPES.value(field_type.value)


def _status(status: str) -> benchmarks_pb2.SubmissionStatus.ValueType:
    # A deleted submission has no status on the wire.
    if status not in SUBMISSION_STATUSES:
        return benchmarks_pb2.SUBMISSION_STATUS_UNSPECIFIED
    return SUBMISSION_STATUSES.value(status)


def _struct(values: dict[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values or {})
    return struct


def schema_proto(schema: CategorySchema) -> benchmarks_pb2.CategorySchema:
    return benchmarks_pb2.CategorySchema(
        category=category_to_proto(schema.category),
        label=schema.label,
        description=schema.description,
        version=schema.version,
        fields=[
            benchmarks_pb2.FieldSchema(
                name=spec.name,
                label=spec.label,
                type=_field_type(spec.type),
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


def _revision_proto(revision: SubmissionRevision) -> benchmarks_pb2.SubmissionRevision:
    return benchmarks_pb2.SubmissionRevision(
        version=revision.version,
        schema_version=revision.schema_version,
        answers=_struct(revision.answers),
        status=_status(revision.status),
        submitted_at=optional_timestamp(revision.submitted_at),
        replaced_at=optional_timestamp(revision.replaced_at),
    )


def submission_proto(
    submission: Submission, history: list[SubmissionRevision] | None = None
) -> benchmarks_pb2.Submission:
    return benchmarks_pb2.Submission(
        id=str(submission.id),
        community_id=submission.community_id,
        category=category_to_proto(Category(submission.category)),
        schema_version=submission.schema_version,
        answers=_struct(submission.answers),
        version=submission.version,
        flagged=submission.flagged,
        status=_status(submission.status),
        created_at=optional_timestamp(submission.created_at),
        updated_at=optional_timestamp(submission.updated_at),
        history=[_revision_proto(revision) for revision in history or []],
        outliers=[benchmarks_pb2.OutlierFlag(**flag) for flag in submission.outliers],
        review_reason=submission.review_reason or "",
        reviewed_at=optional_timestamp(submission.reviewed_at),
    )


def settings_proto(settings: CommunitySettings) -> benchmarks_pb2.CommunitySettings:
    return benchmarks_pb2.CommunitySettings(
        community_id=settings.community_id,
        enabled=settings.enabled,
        updated_at=optional_timestamp(settings.updated_at),
        updated_by=settings.updated_by or "",
    )


def cell_proto(cell: Cell) -> benchmarks_pb2.ResultCell:
    proto = benchmarks_pb2.ResultCell(
        field=cell.field.name,
        field_type=_field_type(cell.field.type),
        group=cell.group,
        unit=cell.field.unit,
        below_floor=cell.below_floor,
    )
    if cell.below_floor:
        return proto
    p10, p25, median, p75, p90 = cell.quantiles
    proto.count = cell.count
    proto.confidence = CONFIDENCES.value(cell.confidence)
    proto.option_counts.update(cell.option_counts)
    if cell.field.type is FieldType.NUMBER:
        proto.mean, proto.median = cell.mean, median
        proto.p10, proto.p25, proto.p75, proto.p90 = p10, p25, p75, p90
    if cell.minimum is not None and cell.maximum is not None:
        proto.min, proto.max = cell.minimum, cell.maximum
    if cell.caller_percentile is not None:
        proto.caller_percentile = cell.caller_percentile
    return proto
