"""Domain errors that carry their gRPC status.

A service raises a subclass (e.g. `class MemberNotFound(NotFound)`); the server interceptor
turns it into that status with the message as details. Anything else becomes INTERNAL.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class DomainError(Exception):
    status: ClassVar[grpc.StatusCode] = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    status = grpc.StatusCode.INVALID_ARGUMENT


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
