"""Routes of benchmarks: the public categories, a community's settings, a member's own
submissions, aggregated results, and the admins' outlier review queue (served by the
benchmarks service; every community route answers 409 while benchmarks are off there)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_gateway.api.benchmarks import operations
from wee5_gateway.api.benchmarks.mappers import result_filters, settings_view
from wee5_gateway.api.benchmarks.schemas import (
    BenchmarkSettings,
    BenchmarkSettingsChange,
    CategoryList,
    CategoryName,
    Results,
    ReviewDecision,
    ReviewedSubmission,
    ReviewPage,
    SubmissionIn,
    SubmissionList,
    SubmissionSaved,
)
from wee5_gateway.core.access import Access, Action, requires
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
)
from wee5_gateway.core.merge_patch import PATCH_DESCRIPTION, MergePatch, patch_body, patched
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import problem_responses


class BenchmarkCategoriesController(Controller):
    path = "/api/v1/benchmarks/categories"
    tags = ["benchmarks"]

    @get(
        "/",
        operation_id="listBenchmarkCategories",
        summary="Benchmark categories and their field schemas: units, bounds, options (public)",
        description="Each category (e.g. compensation) with the fields a submission answers: their"
        " type, unit, bounds and options, and the schema version. No credentials "
        "needed.",
        responses=problem_responses(503, 504),
    )
    async def list_categories(self, downstream: DownstreamDep) -> CategoryList:
        return await operations.categories(downstream)


class BenchmarksController(Controller):
    path = f"{COMMUNITY}/benchmarks"
    tags = ["benchmarks"]
    security = ACCOUNTS

    @get(
        "/settings",
        opt=requires(Action.READ_BENCHMARKS),
        operation_id="getBenchmarkSettings",
        summary="Whether benchmarks are on in the community (members)",
        description="`enabled`, and when an owner last changed it (null while the deployment's "
        "default applies).",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_settings(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> BenchmarkSettings:
        return await _read_settings(downstream, community_id)

    @put(
        "/settings",
        opt=requires(Action.MANAGE_BENCHMARKS),
        operation_id="setBenchmarkSettings",
        summary="Turn benchmarks on or off in the community (owners; audited)",
        description="While benchmarks are off, every other benchmarks route of the community "
        "answers 409 (`not-possible-now`); members' earlier submissions are kept.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def set_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[BenchmarkSettingsChange, body_example({"enabled": True})],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> BenchmarkSettings:
        return await _write_settings(downstream, audit, access, community_id, data)

    @patch(
        "/settings",
        opt=requires(Action.MANAGE_BENCHMARKS),
        operation_id="patchBenchmarkSettings",
        summary="Change the community's benchmark settings, keeping the others (owners; audited)",
        description=PATCH_DESCRIPTION,
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def patch_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[MergePatch, patch_body({"enabled": True})],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> BenchmarkSettings:
        current = await _read_settings(downstream, community_id)
        body = patched(current, data, BenchmarkSettingsChange)
        return await _write_settings(downstream, audit, access, community_id, body)

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
        data: Annotated[
            SubmissionIn,
            body_example({"answers": {"role": "sdr", "region": "europe", "base_salary": 50000}}),
        ],
        downstream: DownstreamDep,
    ) -> SubmissionSaved:
        return await operations.submit(downstream, access, community_id, category, data)

    @get(
        "/submissions/mine",
        opt=requires(Action.SUBMIT_BENCHMARKS),
        operation_id="listMyBenchmarkSubmissions",
        summary="Your own submissions (members); `history=true` adds previous versions",
        description="Your current answers per category with their review status; `history=true` "
        "adds each earlier version.",
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
        return SubmissionList(
            submissions=await operations.my_submissions(
                downstream, access, community_id, category, history=history
            )
        )

    @delete(
        "/submissions/{submission_id:str}",
        opt=requires(Action.SUBMIT_BENCHMARKS),
        operation_id="deleteMyBenchmarkSubmission",
        summary="Delete your own submission and its history (members)",
        description="The submission and its earlier versions are deleted; results no longer count "
        "it. 404 for another member's submission.",
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
                community_id=community_id,
                user_id=operations.member_id(access),
                submission_id=submission_id,
                owner=operations.owner(access),
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
        return await operations.results(
            downstream,
            access,
            community_id,
            category,
            field=field or "",
            group_by=group_by or "",
            filters=result_filters(filters),
        )

    @get(
        "/review",
        opt=requires(Action.REVIEW_BENCHMARKS),
        operation_id="listBenchmarkReviewQueue",
        summary="Submissions flagged as outliers, awaiting review (admins); never who made them",
        description="Submissions outside the usual range of their category, oldest first, without "
        "the submitter's identity (admins).",
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
        return await operations.review_queue(downstream, community_id, category, limit, cursor)

    @post(
        "/review/{submission_id:str}",
        opt=requires(Action.REVIEW_BENCHMARKS),
        status_code=200,
        operation_id="reviewBenchmarkSubmission",
        summary="Approve (counts in results) or reject (never counts) a flagged submission, "
        "with a reason (admins; audited)",
        description="`approve` makes a flagged submission count in results; `reject` keeps it out "
        "for good. The reason is audited; the reviewer never learns who submitted it.",
        responses=problem_responses(400, 401, 403, 404, 409, 422, 503, 504),
    )
    async def review(
        self,
        community_id: FromPath[str],
        submission_id: FromPath[str],
        data: Annotated[
            ReviewDecision,
            body_example({"decision": "approve", "reason": "checked with the member"}),
        ],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ReviewedSubmission:
        return await operations.review(downstream, access, audit, community_id, submission_id, data)


async def _read_settings(downstream: Downstream, community_id: str) -> BenchmarkSettings:
    reply = await downstream.benchmarks.GetCommunitySettings(
        benchmarks_pb2.GetCommunitySettingsRequest(community_id=community_id)
    )
    return settings_view(reply.settings)


async def _write_settings(
    downstream: Downstream,
    audit: Auditor,
    access: Access,
    community_id: str,
    data: BenchmarkSettingsChange,
) -> BenchmarkSettings:
    """Replaces the community's benchmark settings, audited (PUT, and PATCH once merged)."""
    async with audit.change(
        "benchmarks.settings_changed", target=f"community:{community_id}"
    ) as change:
        reply = await downstream.benchmarks.UpdateCommunitySettings(
            benchmarks_pb2.UpdateCommunitySettingsRequest(
                community_id=community_id,
                enabled=data.enabled,
                updated_by=access.principal.actor_id,
            )
        )
        change.done(
            before={"enabled": reply.previous_enabled},
            after={"enabled": reply.settings.enabled},
        )
    return settings_view(reply.settings)
