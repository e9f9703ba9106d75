"""Request and response bodies of benchmarks: categories, submissions, results, review."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

CategoryName = Literal["compensation", "infrastructure", "business", "operational"]
# A number, an option, a list of options, or null (unanswered); checked by the service
# against the category's schema, field by field.
AnswerValue = float | int | str | list[str] | None


class FieldOption(msgspec.Struct):
    value: str
    label: str


class FieldView(msgspec.Struct):
    name: str
    label: str
    # number | enum | multi_enum
    type: str
    description: str
    required: bool
    # Whether results may be grouped and filtered by it (enum fields).
    groupable: bool
    # Numbers: their unit, inclusive bounds, and whether only whole numbers are allowed.
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    integer: bool = False
    options: list[FieldOption] | None = None


class CategoryView(msgspec.Struct):
    category: CategoryName
    label: str
    description: str
    # The current schema version; submissions record the version they answered.
    version: int
    fields: list[FieldView]


class CategoryList(msgspec.Struct):
    categories: list[CategoryView]


class BenchmarkSettings(msgspec.Struct):
    community_id: str
    enabled: bool
    # Null while the community runs on the deployment's default.
    updated_at: datetime | None


class BenchmarkSettingsChange(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool


class SubmissionIn(msgspec.Struct, forbid_unknown_fields=True):
    answers: Annotated[dict[str, AnswerValue], msgspec.Meta(max_length=64)]
    # The schema version the form was built from; 0 or absent: the current one.
    schema_version: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0


class RevisionView(msgspec.Struct):
    version: int
    schema_version: int
    answers: dict[str, Any]
    status: str
    submitted_at: datetime
    replaced_at: datetime


class SubmissionView(msgspec.Struct):
    id: str
    category: CategoryName
    schema_version: int
    # 1 for the first answers, +1 each time they changed.
    version: int
    answers: dict[str, Any]
    # accepted | pending_review (flagged as an outlier, not counted until reviewed) | rejected
    status: str
    flagged: bool
    created_at: datetime
    updated_at: datetime
    # Previous versions, newest first (only with `history=true`).
    history: list[RevisionView] | None = None


class SubmissionSaved(SubmissionView):
    # True the first time the member answers this category (it earns the points).
    first_submission: bool = False


class SubmissionList(msgspec.Struct):
    submissions: list[SubmissionView]


class OutlierView(msgspec.Struct):
    field: str
    value: float
    z_score: float
    modified_z_score: float
    sample_size: int


class ReviewItem(msgspec.Struct):
    """A flagged submission, without who made it."""

    id: str
    category: CategoryName
    schema_version: int
    version: int
    answers: dict[str, Any]
    outliers: list[OutlierView]
    submitted_at: datetime


class ReviewPage(msgspec.Struct):
    items: list[ReviewItem]
    # Pass back as `cursor` for the next page; null on the last one.
    next_cursor: str | None


class ReviewDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["approve", "reject"]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")]


class ReviewedSubmission(msgspec.Struct):
    id: str
    category: CategoryName
    # accepted | rejected
    status: str
    review_reason: str
    reviewed_at: datetime | None


class ResultCell(msgspec.Struct, omit_defaults=True):
    """One field in one group; figures that do not apply (or may not show) are left out."""

    field: str
    # The group's value; null when not grouped.
    group: str | None
    # True: fewer than the floor (or a group that would let someone be singled out); no
    # figures are given, not even the count.
    below_floor: bool
    unit: str | None = None
    count: int | None = None
    # low (5–14) | medium (15–49) | high (50+)
    confidence: str | None = None
    mean: float | None = None
    median: float | None = None
    p10: float | None = None
    p25: float | None = None
    p75: float | None = None
    p90: float | None = None
    # Only from 10 answers: each is one person's answer.
    min: float | None = None
    max: float | None = None
    # Where the caller's own answer stands (0–100), when it counts in this cell.
    caller_percentile: float | None = None
    # Enum fields: how many chose each option (options chosen fewer times than the floor
    # are left out).
    option_counts: dict[str, int] | None = None


class Results(msgspec.Struct):
    category: CategoryName
    schema_version: int
    anonymity_floor: int
    # True: the filters leave too few people (or single someone out); nothing is shown.
    below_floor: bool
    # Valid submissions meeting the filters; null when below the floor.
    total_count: int | None
    cells: list[ResultCell]
