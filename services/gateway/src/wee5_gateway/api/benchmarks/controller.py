"""Routes of benchmarks: the public categories, a community's settings, a member's own
submissions, aggregated results, and the admins' outlier review queue (served by the
benchmarks service; every community route answers 409 while benchmarks are off there)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_gateway.api.benchmarks.schemas import (
    BenchmarkSettings,
    BenchmarkSettingsChange,
    CategoryList,
    CategoryName,
    CategoryView,
    FieldOption,
    FieldView,
    OutlierView,
    ResultCell,
    Results,
    ReviewDecision,
    ReviewedSubmission,
    ReviewItem,
    ReviewPage,
    RevisionView,
    SubmissionIn,
    SubmissionList,
    SubmissionSaved,
    SubmissionView,
)
from wee5_gateway.core.access import Access, Action, requires
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
)
from wee5_gateway.core.problems import ProblemError, problem_responses

_CATEGORIES: dict[str, benchmarks_pb2.Category.ValueType] = {
    "compensation": benchmarks_pb2.CATEGORY_COMPENSATION,
    "infrastructure": benchmarks_pb2.CATEGORY_INFRASTRUCTURE,
    "business": benchmarks_pb2.CATEGORY_BUSINESS,
    "operational": benchmarks_pb2.CATEGORY_OPERATIONAL,
}
_CATEGORY_NAMES = {value: name for name, value in _CATEGORIES.items()}
_STATUS_NAMES = {
    benchmarks_pb2.SUBMISSION_STATUS_ACCEPTED: "accepted",
    benchmarks_pb2.SUBMISSION_STATUS_PENDING_REVIEW: "pending_review",
    benchmarks_pb2.SUBMISSION_STATUS_REJECTED: "rejected",
}
_FIELD_TYPES = {
    benchmarks_pb2.FIELD_TYPE_NUMBER: "number",
    benchmarks_pb2.FIELD_TYPE_ENUM: "enum",
    benchmarks_pb2.FIELD_TYPE_MULTI_ENUM: "multi_enum",
}
_CONFIDENCE = {
    benchmarks_pb2.CONFIDENCE_LOW: "low",
    benchmarks_pb2.CONFIDENCE_MEDIUM: "medium",
    benchmarks_pb2.CONFIDENCE_HIGH: "high",
}
_DECISIONS = {
    "approve": benchmarks_pb2.REVIEW_DECISION_APPROVE,
    "reject": benchmarks_pb2.REVIEW_DECISION_REJECT,
}


def member_id(access: Access) -> str:
    """Who submits: the caller's member id in the community, else their account id."""
    return access.member_user_id or str(access.principal.account_id)


def _time(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _answers(struct: struct_pb2.Struct) -> dict[str, Any]:
    answers: dict[str, Any] = json_format.MessageToDict(struct)
    return answers


def _category_name(value: benchmarks_pb2.Category.ValueType) -> CategoryName:
    return _CATEGORY_NAMES[value]  # type: ignore[return-value]


def _submission(
    submission: benchmarks_pb2.Submission, *, with_history: bool = False
) -> dict[str, Any]:
    return {
        "id": submission.id,
        "category": _category_name(submission.category),
        "schema_version": submission.schema_version,
        "version": submission.version,
        "answers": _answers(submission.answers),
        "status": _STATUS_NAMES.get(submission.status, "unknown"),
        "flagged": submission.flagged,
        "created_at": _time(submission.created_at),
        "updated_at": _time(submission.updated_at),
        "history": [
            RevisionView(
                version=revision.version,
                schema_version=revision.schema_version,
                answers=_answers(revision.answers),
                status=_STATUS_NAMES.get(revision.status, "unknown"),
                submitted_at=_time(revision.submitted_at),
                replaced_at=_time(revision.replaced_at),
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
        type=_FIELD_TYPES[spec.type],
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


def _cell(cell: benchmarks_pb2.ResultCell, numeric: bool) -> ResultCell:
    group = cell.group or None
    if cell.below_floor:
        return ResultCell(field=cell.field, group=group, below_floor=True, unit=cell.unit or None)
    return ResultCell(
        field=cell.field,
        group=group,
        below_floor=False,
        unit=cell.unit or None,
        count=cell.count,
        confidence=_CONFIDENCE.get(cell.confidence),
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


class InvalidFilter(ProblemError):
    status = 400
    slug = "invalid-filter"
    title = "Invalid filter"


def _filters(raw: list[str] | None) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in raw or []:
        name, sep, value = item.partition(":")
        if not sep or not name or not value:
            raise InvalidFilter(f"filter {item!r} is not `<field>:<value>`")
        if name in filters:
            raise InvalidFilter(f"field {name} is filtered more than once")
        filters[name] = value
    return filters


class BenchmarkCategoriesController(Controller):
    path = "/api/v1/benchmarks/categories"
    tags = ["benchmarks"]

    @get(
        "/",
        operation_id="listBenchmarkCategories",
        summary="Benchmark categories and their field schemas: units, bounds, options (public)",
        responses=problem_responses(503, 504),
    )
    async def list_categories(self, downstream: DownstreamDep) -> CategoryList:
        reply = await downstream.benchmarks.ListCategories(benchmarks_pb2.ListCategoriesRequest())
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


class BenchmarksController(Controller):
    path = f"{COMMUNITY}/benchmarks"
    tags = ["benchmarks"]
    security = ACCOUNTS

    @get(
        "/settings",
        opt=requires(Action.READ_BENCHMARKS),
        operation_id="getBenchmarkSettings",
        summary="Whether benchmarks are on in the community (members)",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_settings(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> BenchmarkSettings:
        reply = await downstream.benchmarks.GetCommunitySettings(
            benchmarks_pb2.GetCommunitySettingsRequest(community_id=community_id)
        )
        return _settings(reply.settings)

    @put(
        "/settings",
        opt=requires(Action.MANAGE_BENCHMARKS),
        operation_id="setBenchmarkSettings",
        summary="Turn benchmarks on or off in the community (owners; audited)",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def set_settings(
        self,
        community_id: FromPath[str],
        data: JSONBody[BenchmarkSettingsChange],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> BenchmarkSettings:
        async with audit.change(
            "benchmarks.settings_changed", target=f"community:{community_id}"
        ) as change:
            reply = await downstream.benchmarks.UpdateCommunitySettings(
                benchmarks_pb2.UpdateCommunitySettingsRequest(
                    community_id=community_id,
                    enabled=data.enabled,
                    updated_by=str(access.principal.account_id),
                )
            )
            change.done(
                before={"enabled": reply.previous_enabled},
                after={"enabled": reply.settings.enabled},
            )
        return _settings(reply.settings)

    @put(
        "/{category:str}/submission",
        opt=requires(Action.SUBMIT_BENCHMARKS),
        operation_id="submitBenchmark",
        summary="Create or replace your own answers in a category (members); the previous "
        "version is kept in your history. The same answers again change nothing.",
        description="Answers are checked against the category's schema; every field at fault "
        "is listed in the 422 problem's `errors`. Numbers far outside the community's "
        "distribution are held for an admin's review before they count.",
        responses=problem_responses(400, 401, 403, 409, 422, 429, 503, 504),
    )
    async def submit(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        category: FromPath[CategoryName],
        data: JSONBody[SubmissionIn],
        downstream: DownstreamDep,
    ) -> SubmissionSaved:
        answers = struct_pb2.Struct()
        try:
            answers.update(data.answers)
        except (OverflowError, ValueError):
            raise ProblemError("answers hold a number too large to be one") from None
        reply = await downstream.benchmarks.SubmitBenchmark(
            benchmarks_pb2.SubmitBenchmarkRequest(
                community_id=community_id,
                user_id=member_id(access),
                category=_CATEGORIES[category],
                schema_version=data.schema_version,
                answers=answers,
            )
        )
        return SubmissionSaved(
            **_submission(reply.submission), first_submission=reply.first_submission
        )

    @get(
        "/submissions/mine",
        opt=requires(Action.SUBMIT_BENCHMARKS),
        operation_id="listMyBenchmarkSubmissions",
        summary="Your own submissions (members); `history=true` adds previous versions",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def mine(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        category: FromQuery[CategoryName | None] = None,
        history: FromQuery[bool] = False,
    ) -> SubmissionList:
        reply = await downstream.benchmarks.ListMySubmissions(
            benchmarks_pb2.ListMySubmissionsRequest(
                community_id=community_id,
                user_id=member_id(access),
                category=_CATEGORIES[category] if category else 0,  # type: ignore[arg-type]
                include_history=history,
            )
        )
        return SubmissionList(
            submissions=[
                SubmissionView(**_submission(s, with_history=history)) for s in reply.submissions
            ]
        )

    @delete(
        "/submissions/{submission_id:str}",
        opt=requires(Action.SUBMIT_BENCHMARKS),
        operation_id="deleteMyBenchmarkSubmission",
        summary="Delete your own submission and its history (members)",
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def delete_mine(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        submission_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> None:
        await downstream.benchmarks.DeleteSubmission(
            benchmarks_pb2.DeleteSubmissionRequest(
                community_id=community_id, user_id=member_id(access), submission_id=submission_id
            )
        )

    @get(
        "/{category:str}/results",
        opt=requires(Action.READ_BENCHMARKS),
        operation_id="getBenchmarkResults",
        summary="Aggregated results of a category (members): count, mean, percentiles per "
        "field, optionally grouped and filtered, with your own percentile",
        description="Every cell with fewer than 5 valid answers besides the caller's own — or "
        "that, compared with another query, would single out fewer than 5 people — says "
        "`below_floor` and gives no figures. `filter` is `<field>:<value>` on a groupable "
        "field (up to 3).",
        responses=problem_responses(400, 401, 403, 409, 422, 503, 504),
    )
    async def results(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        category: FromPath[CategoryName],
        downstream: DownstreamDep,
        field: FromQuery[str | None] = None,
        group_by: FromQuery[str | None] = None,
        filters: Annotated[
            list[str] | None,
            QueryParameter(name="filter", description="`<field>:<value>`, repeatable"),
        ] = None,
    ) -> Results:
        reply = await downstream.benchmarks.GetResults(
            benchmarks_pb2.GetResultsRequest(
                community_id=community_id,
                category=_CATEGORIES[category],
                field=field or "",
                group_by=group_by or "",
                filters=_filters(filters),
                user_id=member_id(access),
            )
        )
        return Results(
            category=category,
            schema_version=reply.schema_version,
            anonymity_floor=reply.anonymity_floor,
            below_floor=reply.below_floor,
            total_count=None if reply.below_floor else reply.total_count,
            cells=[
                _cell(cell, cell.field_type == benchmarks_pb2.FIELD_TYPE_NUMBER)
                for cell in reply.cells
            ],
        )

    @get(
        "/review",
        opt=requires(Action.REVIEW_BENCHMARKS),
        operation_id="listBenchmarkReviewQueue",
        summary="Submissions flagged as outliers, awaiting review (admins); never who made them",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def review_queue(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        category: FromQuery[CategoryName | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> ReviewPage:
        reply = await downstream.benchmarks.ListReviewQueue(
            benchmarks_pb2.ListReviewQueueRequest(
                community_id=community_id,
                category=_CATEGORIES[category] if category else 0,  # type: ignore[arg-type]
                page_size=limit,
                page_token=cursor or "",
            )
        )
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
                    submitted_at=_time(s.updated_at),
                )
                for s in reply.submissions
            ],
            next_cursor=reply.next_page_token or None,
        )

    @post(
        "/review/{submission_id:str}",
        opt=requires(Action.REVIEW_BENCHMARKS),
        status_code=200,
        operation_id="reviewBenchmarkSubmission",
        summary="Approve (counts in results) or reject (never counts) a flagged submission, "
        "with a reason (admins; audited)",
        responses=problem_responses(400, 401, 403, 404, 409, 422, 503, 504),
    )
    async def review(
        self,
        community_id: FromPath[str],
        submission_id: FromPath[str],
        data: JSONBody[ReviewDecision],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ReviewedSubmission:
        reason = data.reason.strip()
        async with audit.change("benchmarks.submission_reviewed") as change:
            reply = await downstream.benchmarks.ReviewSubmission(
                benchmarks_pb2.ReviewSubmissionRequest(
                    community_id=community_id,
                    submission_id=submission_id,
                    decision=_DECISIONS[data.decision],
                    reason=reason,
                    reviewer_user_id=str(access.principal.account_id),
                )
            )
            submission = reply.submission
            status = _STATUS_NAMES.get(submission.status, "unknown")
            change.done(
                before={"status": "pending_review"},
                after={"status": status, "decision": data.decision, "reason": reason},
                target=f"benchmark_submission:{submission.id}",
            )
        return ReviewedSubmission(
            id=submission.id,
            category=_category_name(submission.category),
            status=status,
            review_reason=submission.review_reason,
            reviewed_at=_time(submission.reviewed_at)
            if submission.HasField("reviewed_at")
            else None,
        )


def _settings(settings: benchmarks_pb2.CommunitySettings) -> BenchmarkSettings:
    return BenchmarkSettings(
        community_id=settings.community_id,
        enabled=settings.enabled,
        updated_at=_time(settings.updated_at) if settings.HasField("updated_at") else None,
    )
