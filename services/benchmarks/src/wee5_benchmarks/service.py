"""The benchmark rules: who may submit what, what gets flagged, what results may show.

Functions here work inside the caller's transaction and never commit (the servicer does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_benchmarks.categories import (
    Category,
    CategorySchema,
    Field,
    FieldType,
    current_schema,
    normalized,
    schema_version,
    typed_values,
    validate_answers,
)
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.errors import (
    BenchmarksDisabled,
    InvalidBenchmarkRequest,
    NotAwaitingReview,
    SubmissionNotFound,
    SubmissionOfAnother,
    TooManyRevisions,
)
from wee5_benchmarks.models import CommunitySettings, Submission, SubmissionRevision
from wee5_benchmarks.repository import BenchmarksRepository
from wee5_benchmarks.snapshot import Snapshots
from wee5_benchmarks.statistics import (
    Filter,
    OutlierCheck,
    Privacy,
    Results,
    ResultsQuery,
    check_outlier,
    field_values,
)
from wee5_kit.communities import COMMUNITY_ID_RULE, is_community_id
from wee5_kit.events import Outbox, new_meta
from wee5_kit.pagination import InvalidPageToken, decode_page_token, encode_page_token, take_page

SUBMITTED_SUBJECT = "benchmarks.submitted"
MAX_FILTERS = 3
MAX_ID = 64
MAX_REASON = 1000
CHANGE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class SubmitResult:
    submission: Submission
    first_submission: bool
    changed: bool


@dataclass(frozen=True)
class ResultsRequest:
    community_id: str
    category: Category
    field: str
    group_by: str
    filters: dict[str, str]
    user_id: str
    owner: str = ""


@dataclass(frozen=True)
class ReviewPage:
    submissions: list[Submission]
    next_token: str


def owner_of(owner: str, user_id: str) -> str:
    """The submission owner a request names; callers that name none (internal tools) own by
    member id."""
    return owner or f"member:{user_id}"


def _require_id(name: str, value: str) -> None:
    if not value or len(value) > MAX_ID:
        raise InvalidBenchmarkRequest.of(name, f"is required and at most {MAX_ID} characters")


class BenchmarksService:
    def __init__(self, settings: BenchmarksSettings, outbox: Outbox, snapshots: Snapshots) -> None:
        self.settings = settings
        self.outbox = outbox
        self.snapshots = snapshots
        self.privacy = Privacy(settings.benchmarks_privacy_floor, settings.benchmarks_min_max_floor)

    # Settings ---------------------------------------------------------------------------

    async def community_settings(
        self, session: AsyncSession, community_id: str
    ) -> CommunitySettings:
        if not is_community_id(community_id):
            # The one community id rule, reported as this service reports every field.
            raise InvalidBenchmarkRequest.of("community_id", COMMUNITY_ID_RULE)
        found = await BenchmarksRepository(session).settings(community_id)
        return found or CommunitySettings(
            community_id=community_id,
            enabled=self.settings.benchmarks_enabled_by_default,
            updated_by=None,
            updated_at=None,
        )

    async def update_settings(
        self, session: AsyncSession, community_id: str, enabled: bool, updated_by: str
    ) -> tuple[CommunitySettings, bool]:
        """The new settings and whether benchmarks were on before."""
        previous = (await self.community_settings(session, community_id)).enabled
        saved = await BenchmarksRepository(session).save_settings(
            community_id, enabled, updated_by or None
        )
        return saved, previous

    async def require_enabled(self, session: AsyncSession, community_id: str) -> None:
        if not (await self.community_settings(session, community_id)).enabled:
            raise BenchmarksDisabled(community_id)

    # Submissions --------------------------------------------------------------------------

    async def submit(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        user_id: str,
        category: Category,
        version: int,
        answers: dict[str, Any],
        owner: str = "",
    ) -> SubmitResult:
        """Creates or replaces the member's submission, files the replaced one in its history,
        and checks each number against the category's valid answers (the member's own aside).
        Only the submission's owner replaces it; one without an owner (written before owners
        were kept) is claimed with its history erased, so its old answers reach nobody."""
        _require_id("user_id", user_id)
        owner = owner_of(owner, user_id)
        await self.require_enabled(session, community_id)
        schema = schema_version(category, version)
        if schema is None:
            raise InvalidBenchmarkRequest.of(
                "schema_version", f"{category} has no version {version}"
            )
        violations = validate_answers(schema, answers)
        if violations:
            raise InvalidBenchmarkRequest(violations)
        answers = normalized(schema, answers)
        repo = BenchmarksRepository(session)
        revision = await repo.next_revision(community_id, category)
        existing = await repo.find(community_id, user_id, category)
        if existing is not None and existing.owner != owner:
            if existing.owner is not None:
                raise SubmissionOfAnother()
            await repo.lock(existing)
            await repo.erase_history(existing.id)
            existing.owner = owner
            existing.status = "deleted"  # what it held is not the new owner's to keep
        if (
            existing is not None
            and existing.status != "deleted"
            and existing.answers == answers
            and existing.schema_version == schema.version
        ):
            # The same answers again (a retried PUT): nothing changes, no new version.
            return SubmitResult(existing, first_submission=False, changed=False)
        now = datetime.now(UTC)
        if existing is not None:
            self._count_change(existing, now, may_refuse=True)
        checks = await self._outliers(session, community_id, category, existing, answers)
        numbers, choices = typed_values(schema, answers)
        fields: dict[str, Any] = {
            "schema_version": schema.version,
            "answers": answers,
            "numbers": numbers,
            "choices": choices,
            "status": "pending_review" if checks else "accepted",
            "flagged": bool(checks),
            "outliers": [_outlier_json(check) for check in checks],
            "review_reason": None,
            "reviewed_by": None,
            "reviewed_at": None,
            "revision": revision,
            "updated_at": now,
        }
        if existing is None:
            submission = await repo.add(
                Submission(
                    id=uuid.uuid4(),
                    community_id=community_id,
                    user_id=user_id,
                    owner=owner,
                    category=category.value,
                    version=1,
                    created_at=now,
                    **fields,
                )
            )
            await self._publish_first(session, submission)
            return SubmitResult(submission, first_submission=True, changed=True)
        if existing.status != "deleted":
            await repo.keep_revision(existing, now)
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.version += 1
        await session.flush()
        return SubmitResult(existing, first_submission=False, changed=True)

    def _count_change(self, submission: Submission, now: datetime, *, may_refuse: bool) -> None:
        """Counts one more change of the member's answers in the current 24-hour window, or
        refuses new answers beyond the limit: probing the others by moving one's own answer
        (and reading one's percentile) takes many changes, deleting and answering again
        included. Deleting is never refused, only counted."""
        limit = self.settings.benchmarks_revisions_per_day
        if submission.changes_since is None or now - submission.changes_since >= CHANGE_WINDOW:
            submission.changes_since, submission.recent_changes = now, 0
        if may_refuse and submission.recent_changes >= limit:
            raise TooManyRevisions(limit)
        submission.recent_changes += 1

    async def _outliers(
        self,
        session: AsyncSession,
        community_id: str,
        category: Category,
        existing: Submission | None,
        answers: dict[str, Any],
    ) -> list[OutlierCheck]:
        """The numeric answers far from the category's valid ones (the member's own aside)."""
        snapshot = await self.snapshots.current(session, community_id, category)
        own_row = snapshot.rows.get(str(existing.id)) if existing else None
        schema = current_schema(category)
        flagged = []
        for spec in schema.numeric_fields:
            value = answers.get(spec.name)
            if value is None:
                continue
            others = field_values(snapshot, schema, spec, own_row)
            check = check_outlier(
                spec, float(value), others, self.settings.benchmarks_outlier_min_sample
            )
            if check is not None and check.flagged:
                flagged.append(check)
        return flagged

    async def _publish_first(self, session: AsyncSession, submission: Submission) -> None:
        await self.outbox.add(
            session,
            SUBMITTED_SUBJECT,
            events_pb2.BenchmarkSubmitted(
                meta=new_meta(submission.community_id),
                user_id=submission.user_id,
                category=submission.category,
                first_in_category=True,
            ),
        )

    async def mine(
        self,
        session: AsyncSession,
        community_id: str,
        user_id: str,
        category: Category | None,
        include_history: bool,
        owner: str = "",
    ) -> tuple[list[Submission], dict[uuid.UUID, list[SubmissionRevision]]]:
        """The owner's submissions (never those of another account linked to the same member
        id)."""
        _require_id("user_id", user_id)
        await self.require_enabled(session, community_id)
        repo = BenchmarksRepository(session)
        submissions = await repo.mine(community_id, owner_of(owner, user_id), category)
        history: dict[uuid.UUID, list[SubmissionRevision]] = {}
        if include_history:
            for revision in await repo.history([s.id for s in submissions]):
                history.setdefault(revision.submission_id, []).append(revision)
        return submissions, history

    async def delete(
        self,
        session: AsyncSession,
        community_id: str,
        user_id: str,
        submission_id: str,
        owner: str = "",
    ) -> None:
        """Erases the owner's answers and their history; someone else's id is not found."""
        _require_id("user_id", user_id)
        await self.require_enabled(session, community_id)
        repo = BenchmarksRepository(session)
        submission = await repo.get(community_id, _parse_id(submission_id))
        if (
            submission is None
            or submission.owner != owner_of(owner, user_id)
            or submission.status == "deleted"
        ):
            raise SubmissionNotFound(submission_id)
        revision = await repo.next_revision(community_id, submission.category)
        await repo.lock(submission)
        self._count_change(submission, datetime.now(UTC), may_refuse=False)
        await repo.erase_history(submission.id)
        await repo.touch(
            submission.id,
            answers=None,
            numbers=None,
            choices=None,
            outliers=[],
            status="deleted",
            flagged=False,
            review_reason=None,
            revision=revision,
            updated_at=datetime.now(UTC),
        )

    # Results ------------------------------------------------------------------------------

    async def results(self, session: AsyncSession, request: ResultsRequest) -> Results:
        await self.require_enabled(session, request.community_id)
        schema = current_schema(request.category)
        fields = self._result_fields(schema.fields, request)
        group_by = None
        if request.group_by:
            group_by = _groupable(schema, "group_by", request.group_by)
        filters = []
        if len(request.filters) > MAX_FILTERS:
            raise InvalidBenchmarkRequest.of("filters", f"at most {MAX_FILTERS} filters at once")
        for name, value in sorted(request.filters.items()):
            spec = _groupable(schema, f"filters.{name}", name).field
            code = spec.option_index(value)
            if code is None:
                allowed = ", ".join(option.value for option in spec.options)
                raise InvalidBenchmarkRequest.of(f"filters.{name}", f"must be one of: {allowed}")
            if group_by is not None and group_by.field is spec:
                raise InvalidBenchmarkRequest.of("group_by", "cannot group by a filtered field")
            filters.append(Filter(spec, schema.choice_fields.index(spec), code))
        own = None
        if request.user_id:
            # The caller's own answers: those they own, whatever member id is linked now.
            own = await BenchmarksRepository(session).find_owned(
                request.community_id,
                owner_of(request.owner, request.user_id),
                request.category.value,
            )
        snapshot = await self.snapshots.current(session, request.community_id, request.category)
        # Synchronous from here on: the snapshot cannot move under the computation.
        caller_row = snapshot.users.get(own.user_id) if own else None
        query = ResultsQuery(snapshot, schema, self.privacy, filters, group_by)
        return query.run(fields, caller_row)

    def _result_fields(self, fields: tuple[Field, ...], request: ResultsRequest) -> list[Field]:
        if not request.field:
            return [f for f in fields if f.type is FieldType.NUMBER]
        spec = next((f for f in fields if f.name == request.field), None)
        if spec is None:
            names = ", ".join(f.name for f in fields)
            raise InvalidBenchmarkRequest.of("field", f"must be one of: {names}")
        return [spec]

    # Review -------------------------------------------------------------------------------

    async def review_queue(
        self,
        session: AsyncSession,
        community_id: str,
        category: Category | None,
        page_size: int,
        page_token: str,
    ) -> ReviewPage:
        await self.require_enabled(session, community_id)
        if not 0 <= page_size <= 100:
            raise InvalidBenchmarkRequest.of("page_size", "must be between 1 and 100")
        limit = page_size or 50
        rows, more = take_page(
            await BenchmarksRepository(session).review_queue(
                community_id, category, _review_cursor(page_token), limit + 1
            ),
            limit,
        )
        last = rows[-1] if more else None
        token = encode_page_token(last.updated_at, last.id) if last else ""
        return ReviewPage(rows, token)

    async def review(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        submission_id: str,
        approve: bool,
        reason: str,
        reviewer: str,
    ) -> Submission:
        await self.require_enabled(session, community_id)
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidBenchmarkRequest.of(
                "reason", f"is required and at most {MAX_REASON} characters"
            )
        repo = BenchmarksRepository(session)
        submission = await repo.get(community_id, _parse_id(submission_id))
        if submission is None:
            raise SubmissionNotFound(submission_id)
        # The category lock first (as every writer takes it), then the row as it is now.
        revision = await repo.next_revision(community_id, submission.category)
        await repo.lock(submission)
        if submission.status != "pending_review":
            raise NotAwaitingReview(submission_id)
        submission.status = "accepted" if approve else "rejected"
        submission.review_reason = reason
        submission.reviewed_by = reviewer or None
        submission.reviewed_at = datetime.now(UTC)
        submission.revision = revision
        await session.flush()
        return submission


def _groupable(schema: CategorySchema, param: str, name: str) -> Filter:
    """The groupable field `name` (as a filter without a value yet)."""
    spec = schema.by_name.get(name)
    if spec is None or not spec.groupable:
        names = ", ".join(f.name for f in schema.fields if f.groupable)
        raise InvalidBenchmarkRequest.of(param, f"must be one of: {names}")
    return Filter(spec, schema.choice_fields.index(spec), -1)


def _outlier_json(check: OutlierCheck) -> dict[str, Any]:
    return {
        "field": check.field,
        "value": check.value,
        "z_score": round(check.z_score, 4),
        "modified_z_score": round(check.modified_z_score, 4),
        "sample_size": check.sample_size,
    }


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidBenchmarkRequest.of("submission_id", "is not a submission id") from None


def _review_cursor(token: str) -> tuple[datetime, uuid.UUID] | None:
    """Where the next page of the review queue starts: (updated_at, id) of the last row shown."""
    if not token:
        return None
    try:
        moment, submission_id = decode_page_token(token, datetime, uuid.UUID, name="page_token")
    except InvalidPageToken:
        raise InvalidBenchmarkRequest.of(
            "page_token", "is not a token this queue returned"
        ) from None
    return moment, submission_id
