"""Domain errors that carry their gRPC status.

A service raises a subclass (e.g. `class MemberNotFound(NotFound)`); the server interceptor
turns it into that status with the message as details, and the subclass's name as the reason
of a `google.rpc.ErrorInfo` (`MEMBER_NOT_FOUND`), from which the gateway answers a problem type
of its own. Anything else becomes INTERNAL.
"""

from __future__ import annotations

import re
from typing import ClassVar

import grpc

_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


class DomainError(Exception):
    status: ClassVar[grpc.StatusCode] = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @classmethod
    def reason_code(cls) -> str:
        """The failure's name for callers, in `google.rpc.ErrorInfo` style: `BENCHMARKS_DISABLED`
        for `BenchmarksDisabled`."""
        return _WORD_START.sub("_", cls.__name__).upper()


class InvalidArgument(DomainError):
    status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidField(InvalidArgument):
    """An argument that breaks a rule, naming the field: the status carries a
    `google.rpc.BadRequest` field violation beside the reason."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DomainError):
    status = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    status = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    status = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    status = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(DomainError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    status = grpc.StatusCode.UNAVAILABLE
