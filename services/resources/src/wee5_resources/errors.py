"""Failures of the resources service that a caller can act on, each with its gRPC status."""

from __future__ import annotations

from wee5_kit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from wee5_kit.errors import Unavailable as UnavailableError


class LibraryDisabled(FailedPrecondition):
    def __init__(self, community_id: str) -> None:
        super().__init__(f"the resource library is turned off in community {community_id}")


class ResourceNotFound(NotFound):
    def __init__(self, resource_id: str) -> None:
        super().__init__(f"no resource {resource_id} in this community")


class InvalidResource(InvalidArgument):
    pass


class UploadNotFound(NotFound):
    def __init__(self, storage_key: str) -> None:
        super().__init__(f"no upload URL was issued for {storage_key} in this community")


class UploadUsed(FailedPrecondition):
    def __init__(self, storage_key: str) -> None:
        super().__init__(
            f"{storage_key} was published and has since been deleted; ask for a new upload URL"
        )


class FileMissing(FailedPrecondition):
    def __init__(self, storage_key: str) -> None:
        super().__init__(f"nothing was uploaded to {storage_key} yet; upload the file first")


class FileRejected(InvalidArgument):
    """The uploaded file failed verification; it has been deleted."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}; the uploaded file was deleted")


class MembershipRequired(PermissionDenied):
    pass


class MembershipUnavailable(UnavailableError):
    def __init__(self) -> None:
        super().__init__("membership state cannot be checked right now; try again shortly")
