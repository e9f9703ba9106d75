"""What the JSON routes and the pages both do with benchmarks: the downstream call and the
mapping of its answer (and the audit of a review), once."""

from __future__ import annotations

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_gateway.api.benchmarks.mappers import (
    REVIEW_DECISIONS,
    answers_struct,
    category_list,
    category_value,
    results_view,
    review_page,
    reviewed_submission,
    submission_fields,
)
from wee5_gateway.api.benchmarks.schemas import (
    CategoryList,
    CategoryName,
    Results,
    ReviewDecision,
    ReviewedSubmission,
    ReviewPage,
    SubmissionIn,
    SubmissionSaved,
    SubmissionView,
)
from wee5_gateway.core.access import Access
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream


def member_id(access: Access) -> str:
    """Who submits: the caller's member id in the community, else their account id."""
    return access.member_user_id or str(access.principal.account_id)


def owner(access: Access) -> str:
    """Who owns what the caller submits, as authenticated: their account, or their Whop user.
    Unlike the member id, linking cannot move it, so a second account linked to the same
    member id reads nothing of the first's answers."""
    principal = access.principal
    if principal.account_id is not None:
        return f"account:{principal.account_id}"
    if principal.whop_user_id is not None:
        return f"whop:{principal.whop_user_id}"
    return f"api_key:{principal.api_key_id}"


async def categories(downstream: Downstream) -> CategoryList:
    return category_list(
        await downstream.benchmarks.ListCategories(benchmarks_pb2.ListCategoriesRequest())
    )


async def submit(
    downstream: Downstream,
    access: Access,
    community_id: str,
    category: CategoryName,
    body: SubmissionIn,
) -> SubmissionSaved:
    reply = await downstream.benchmarks.SubmitBenchmark(
        benchmarks_pb2.SubmitBenchmarkRequest(
            community_id=community_id,
            user_id=member_id(access),
            category=category_value(category),
            schema_version=body.schema_version,
            answers=answers_struct(body.answers),
            owner=owner(access),
        )
    )
    return SubmissionSaved(
        **submission_fields(reply.submission), first_submission=reply.first_submission
    )


async def my_submissions(
    downstream: Downstream,
    access: Access,
    community_id: str,
    category: CategoryName | None = None,
    *,
    history: bool = False,
) -> list[SubmissionView]:
    reply = await downstream.benchmarks.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(
            community_id=community_id,
            user_id=member_id(access),
            category=category_value(category),
            include_history=history,
            owner=owner(access),
        )
    )
    return [SubmissionView(**submission_fields(s, with_history=history)) for s in reply.submissions]


async def results(
    downstream: Downstream,
    access: Access,
    community_id: str,
    category: CategoryName,
    *,
    field: str = "",
    group_by: str = "",
    filters: dict[str, str] | None = None,
) -> Results:
    reply = await downstream.benchmarks.GetResults(
        benchmarks_pb2.GetResultsRequest(
            community_id=community_id,
            category=category_value(category),
            field=field,
            group_by=group_by,
            filters=filters or {},
            user_id=member_id(access),
            owner=owner(access),
        )
    )
    return results_view(category, reply)


async def review_queue(
    downstream: Downstream,
    community_id: str,
    category: CategoryName | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ReviewPage:
    reply = await downstream.benchmarks.ListReviewQueue(
        benchmarks_pb2.ListReviewQueueRequest(
            community_id=community_id,
            category=category_value(category),
            page_size=limit,
            page_token=cursor or "",
        )
    )
    return review_page(reply)


async def review(
    downstream: Downstream,
    access: Access,
    audit: Auditor,
    community_id: str,
    submission_id: str,
    decision: ReviewDecision,
) -> ReviewedSubmission:
    """Approve or reject a flagged submission, audited."""
    reason = decision.reason.strip()
    async with audit.change("benchmarks.submission_reviewed") as change:
        reply = await downstream.benchmarks.ReviewSubmission(
            benchmarks_pb2.ReviewSubmissionRequest(
                community_id=community_id,
                submission_id=submission_id,
                decision=REVIEW_DECISIONS.value(decision.decision),
                reason=reason,
                reviewer_user_id=access.principal.actor_id,
            )
        )
        reviewed = reviewed_submission(reply.submission)
        change.done(
            before={"status": "pending_review"},
            after={"status": reviewed.status, "decision": decision.decision, "reason": reason},
            target=f"benchmark_submission:{reviewed.id}",
        )
    return reviewed
