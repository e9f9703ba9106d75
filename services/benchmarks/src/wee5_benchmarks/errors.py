"""Failures of the benchmarks service that a caller can act on, each with its gRPC status."""

from __future__ import annotations

from wee5_benchmarks.categories import FieldViolation
from wee5_kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)


class InvalidBenchmarkRequest(InvalidArgument):
    """A request the service cannot read; `violations` name each field at fault."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = violations

    @classmethod
    def of(cls, field: str, message: str) -> InvalidBenchmarkRequest:
        return cls([FieldViolation(field, message)])


class BenchmarksDisabled(FailedPrecondition):
    def __init__(self, community_id: str) -> None:
        super().__init__(f"benchmarks are turned off in community {community_id}")


class SubmissionNotFound(NotFound):
    def __init__(self, submission_id: str) -> None:
        super().__init__(f"no submission {submission_id} here")


class NotAwaitingReview(FailedPrecondition):
    def __init__(self, submission_id: str) -> None:
        super().__init__(f"submission {submission_id} is not awaiting review")


class TooManyRevisions(ResourceExhausted):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"a submission may change at most {limit} times in 24 hours; try again later"
        )


class SubmissionOfAnother(PermissionDenied):
    """The member id's answers were written by another account: linking a second account to
    the same member id does not hand them over."""

    def __init__(self) -> None:
        super().__init__(
            "this member's answers belong to another account; answer from the account that "
            "wrote them"
        )
